"""VGG encoders (Simonyan & Zisserman 2015): the first study's ImageNet backbone."""

from __future__ import annotations

import keras

from unet_tf.models.encoders.spec import EncoderSpec

VGG_ENCODERS = (
    EncoderSpec(
        name="vgg16",
        constructor=keras.applications.VGG16,
        # every block's last convolution, before its pooling
        skips=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        bottleneck="block5_pool",
        preprocessing="caffe",
        min_size=32,
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        imagenet_md5="6d6bbae143d832006294945121d1f1fc",
        help="VGG16 (ImageNet, keras.applications)",
    ),
)
