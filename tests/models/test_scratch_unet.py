"""The scratch U-Net through the shared encoder checks: it has no encoder to freeze or load."""

from __future__ import annotations

from typing import ClassVar

import pytest
from encoder_tester import EncoderTester

from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model, resolve_model_config


class TestScratchUnet(EncoderTester):
    backbone = "none"
    fields: ClassVar[dict[str, int]] = {"base_filters": 4, "depth": 2}
    min_size = 8
    odd_shape = (37, 45)
    depth = 2
    too_small = "depth 2 needs inputs of at least 8 px"
    grey_layer = rgb_layer = "standardize"  # any channel count, no adapter

    def build_grey(self):
        return build_model(self.config(), self.min_size)

    def test_freeze_fixes_the_encoder_and_runs_its_batchnorm_in_inference_mode(self, grey):
        assert all(w.trainable for w in grey.weights if "moving" not in w.path)
        with pytest.raises(UserError, match="need a pretrained --backbone"):
            RunConfig(model=self.config(freeze=True)).validate()

    def test_imagenet_md5_is_the_one_keras_checks_its_download_against(self):
        cfg = self.config(encoder_weights="imagenet")  # the CLI default: nothing to load
        assert resolve_model_config(cfg, self.min_size).encoder_weights_md5 is None

    def test_local_imagenet_weights_are_loaded_and_their_md5_recorded(self, grey):
        pytest.skip("the scratch U-Net has no encoder to load ImageNet weights into")


class TestResidualScratchUnet(TestScratchUnet):
    """The same checks with a shortcut around every level (``--block residual``)."""

    fields: ClassVar[dict[str, object]] = {"base_filters": 4, "depth": 2, "block": "residual"}


class TestAttentionScratchUnet(TestScratchUnet):
    """The same checks with every skip weighed by an attention gate (``--attention``)."""

    fields: ClassVar[dict[str, object]] = {"base_filters": 4, "depth": 2, "attention": True}
