"""What every file format shares: the float32 copy of a mixed-precision model, and the
comparison of a reloaded export with Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_tester import bf16_unet

from unet_tf.errors import UserError
from unet_tf.export.common import difference, float32_copy


def test_float32_copy_keeps_weights_and_drops_bfloat16():
    model = bf16_unet()
    copy = float32_copy(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    x = np.random.default_rng(0).random((1, 64, 64, 1)).astype(np.float32) * 255
    assert 0 < np.abs(copy(x).numpy() - model(x).numpy()).max() < 2e-2
    assert float32_copy(copy) is copy


def test_difference_refuses_an_output_of_another_shape():
    expected = np.zeros((2, 8, 8, 1), np.float32)
    got = expected + np.float32(0.25)
    assert difference(got, expected, Path("m.onnx")) == 0.25
    # an extra leading axis would broadcast to a difference of 0.25 too
    with pytest.raises(UserError, match=r"m.onnx returns shape \(1, 2, 8, 8, 1\)"):
        difference(got[None], expected, Path("m.onnx"))
