"""VGG16: the shared encoder checks, its skip table and its fixed depth."""

from __future__ import annotations

import pytest
from encoder_tester import EncoderTester

from unet_tf.errors import UserError
from unet_tf.models import build_model
from unet_tf.models.encoders import ENCODERS


class TestVgg16(EncoderTester):
    backbone = "vgg16"
    min_size = 32
    odd_shape = (200, 300)
    too_small = r"too small for the vgg16 encoder.*32 px"
    weights_file = "vgg16_imagenet_notop.h5"
    weights_layer = "block1_conv1"

    def test_skip_table(self):
        spec = ENCODERS.get("vgg16")
        skips = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
        assert spec.skips == skips and spec.bottleneck == "block5_pool"

    def test_depth_is_fixed(self):
        with pytest.raises(UserError, match="drop --depth 3"):
            build_model(self.config(depth=3), 64)
