"""SavedModel folders: endpoints for raw images of any size, replaced only if marked ours."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from export_tester import ExportFormatTester

from unet_tf.errors import UserError
from unet_tf.export.exporter import export_model
from unet_tf.rundir import is_ours


class TestSavedModel(ExportFormatTester):
    fmt = "savedmodel"
    float32 = False  # TensorFlow runs bfloat16: the SavedModel keeps the model's precision

    def test_integer_endpoints_resize_inside(self, reopened):
        loaded = reopened.network.loaded
        image = np.random.default_rng(0).integers(0, 4096, (1, 50, 70, 1)).astype(np.uint16)
        probs = loaded.serve_uint16(tf.constant(image)).numpy()
        assert probs.shape == (1, 50, 70, 1) and probs.dtype == np.float32

    def test_a_users_folder_is_never_replaced(self, exported, tmp_path):
        assert is_ours(exported.out, "export")
        (tmp_path / "figure.png").write_bytes(b"not ours")
        with pytest.raises(UserError, match="not created by unet-tf"):
            export_model(exported.predictor, self.fmt, tmp_path, overwrite=True)
        assert (tmp_path / "figure.png").read_bytes() == b"not ours"
