"""ResNet encoders (He et al. 2016)."""

from __future__ import annotations

import keras

from unet_tf.models.encoders.spec import INPUT, EncoderSpec

RESNET_ENCODERS = (
    EncoderSpec(
        name="resnet50",
        constructor=keras.applications.ResNet50,
        # the stem's stride-2 ReLU and each stage's last block; stride 1 is the image
        skips=(INPUT, "conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
        bottleneck="conv5_block3_out",
        preprocessing="caffe",
        min_size=32,
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        imagenet_md5="4d473c1dd8becc155b73f8504c6f6626",
        help="ResNet50 (ImageNet, keras.applications)",
    ),
)
