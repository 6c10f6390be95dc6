"""ResNet50: the shared encoder checks and its skip table."""

from __future__ import annotations

from encoder_tester import EncoderTester

from unet_tf.models.encoders import ENCODERS


class TestResnet50(EncoderTester):
    backbone = "resnet50"
    min_size = 32
    odd_shape = (200, 300)
    too_small = r"too small for the resnet50 encoder.*32 px"
    weights_file = "resnet50_imagenet_notop.h5"
    weights_layer = "conv1_conv"

    def test_skip_table(self):
        spec = ENCODERS.get("resnet50")
        skips = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out")
        assert spec.skips[1:] == skips and spec.bottleneck == "conv5_block3_out"
