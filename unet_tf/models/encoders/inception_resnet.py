"""Inception-ResNet encoders (Szegedy et al. 2017).

InceptionResNetV2's stem has no explicit layer names at all; ``name_irv2_stem``
gives the two stem activations we tap stable names, found by their position in the
stem, which the architecture fixes.
"""

from __future__ import annotations

import keras

from unet_tf.models.encoders.spec import INPUT, EncoderSpec


def name_irv2_stem(app: keras.Model) -> None:
    """Name InceptionResNetV2's stride-2 and stride-4 stem activations.

    The stem is five conv-BN-ReLU units before ``mixed_5b``: the first (stride 2,
    127 px at a 256 input) and the fifth (stride 4, 60 px, the last before the
    second pooling) are the skips. Renaming changes no weights.
    """
    stem_end = app.layers.index(app.get_layer("mixed_5b"))
    stem = app.layers[:stem_end]
    activations = [layer for layer in stem if isinstance(layer, keras.layers.Activation)]
    pooling = [layer for layer in stem if isinstance(layer, keras.layers.MaxPooling2D)]
    if len(pooling) != 2 or pooling[1].input is not activations[4].output:
        raise RuntimeError("unexpected InceptionResNetV2 stem layout in this Keras version")
    activations[0].name = "stem_conv1_ac"
    activations[4].name = "stem_conv5_ac"


INCEPTION_RESNET_ENCODERS = (
    EncoderSpec(
        name="inceptionresnetv2",
        constructor=keras.applications.InceptionResNetV2,
        # 'valid' padding: 127/60/29/14/6 px at a 256 input; the decoder resizes to each.
        skips=(INPUT, "stem_conv1_ac", "stem_conv5_ac", "block35_10_ac", "block17_20_ac"),
        bottleneck="conv_7b_ac",
        preprocessing="tf",
        min_size=75,
        weights_file="inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        imagenet_md5="d19885ff4a710c122648d3b5c3b684e4",
        help="InceptionResNetV2 (ImageNet, keras.applications)",
        prepare=name_irv2_stem,
    ),
)
