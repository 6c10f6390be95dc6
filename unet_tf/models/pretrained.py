"""U-Nets whose encoder is a keras.applications ImageNet network.

The encoder is the pretrained network without its classifier, wrapped as a nested
model named ``encoder`` whose outputs are the skip layers of its registry entry
(``unet_tf.models.encoders``) and the bottleneck. Freezing is then one switch:
``encoder.trainable = False`` makes every encoder weight non-trainable and runs its
BatchNorm layers in inference mode (Keras 3 ties the two), which is what a frozen
pretrained encoder should do with batches of 2-4 images.

The decoder is randomly initialised: the scratch U-Net's ``decoder_block`` with
segmentation-models' filter counts (256, 128, 64, 32, 16), so both routes decode
alike. ``decoder_block`` resizes each upsampled map to its skip, which handles
sizes not divisible by 32 and InceptionResNetV2's 'valid'-padded maps alike.
"""

from __future__ import annotations

from dataclasses import replace

import keras
from keras import layers

from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models.blocks import BATCHNORM_MOMENTUM, decoder_block, segmentation_head
from unet_tf.models.encoders import ENCODERS, INPUT, EncoderSpec
from unet_tf.models.encoders.weights import load_application, weights_md5
from unet_tf.models.input_layers import encoder_input

DECODER_FILTERS = (16, 32, 64, 128, 256)  # stride 1 to stride 16, as segmentation-models
LEVELS = len(DECODER_FILTERS)
ENCODER = "encoder"


def build_encoder(spec: EncoderSpec, weights: str) -> keras.Model:
    """The nested encoder model: skips then bottleneck.

    Its BatchNorm layers take the decoder's momentum: fine-tuned, their moving
    statistics must follow the changing weights as closely (frozen, they never move).
    """
    app = load_application(spec, weights)
    for layer in app.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    names = [n for n in spec.skips if n != INPUT] + [spec.bottleneck]
    outputs = [app.get_layer(n).output for n in names]
    return keras.Model(app.input, outputs, name=ENCODER)


def build_pretrained_unet(
    spec: EncoderSpec,
    in_channels: int,
    num_classes: int = 1,
    weights: str = "imagenet",
    freeze: bool = False,
    input_adapter: str = "repeat",
    skip_merge: str = "resize",
    dropout: float = 0.0,
    activation: str = "auto",
    block: str = "plain",
    attention: bool = False,
) -> keras.Model:
    """A U-Net on ``spec``'s encoder that takes raw images of any size of at least
    ``spec.min_size`` px; ``block`` is the decoder's levels (the encoder is Keras'), and
    ``attention`` gates the encoder's skips before the decoder joins them."""
    inputs = keras.Input((None, None, in_channels), name="image")
    x = encoder_input(inputs, in_channels, input_adapter, spec.preprocess, spec.name)
    encoder = build_encoder(spec, weights)
    encoder.trainable = not freeze
    features = encoder(x)
    named = iter(features[:-1])
    skips = [x if name == INPUT else next(named) for name in spec.skips]
    y = features[-1]
    if dropout > 0:
        y = layers.Dropout(dropout, name="bottleneck_dropout")(y)
    for level in reversed(range(LEVELS)):
        y = decoder_block(
            y,
            skips[level],
            DECODER_FILTERS[level],
            f"dec{level + 1}",
            skip_merge,
            block=block,
            attention=attention,
        )
    reference = inputs if skip_merge == "crop" else None
    outputs = segmentation_head(y, num_classes, reference, activation=activation)
    return keras.Model(inputs, outputs, name=f"unet_{spec.name}")


def resolve_pretrained(cfg: ModelConfig, input_size: int) -> ModelConfig:
    """Check the config against the encoder; fill in its depth and weights' md5."""
    spec = ENCODERS.get(cfg.backbone)
    if cfg.depth not in (None, LEVELS):
        raise UserError(
            f"the {spec.name} encoder has {LEVELS} levels; drop --depth {cfg.depth} "
            "(it only applies to --backbone none)"
        )
    if input_size < spec.min_size:
        raise UserError(
            f"--size/--patch {input_size} is too small for the {spec.name} encoder, which "
            f"needs at least {spec.min_size} px"
        )
    md5 = weights_md5(cfg.encoder_weights, spec.weights_file, spec.imagenet_md5)
    return replace(cfg, depth=LEVELS, encoder_weights_md5=md5)


def build_pretrained(cfg: ModelConfig) -> keras.Model:
    """The registry's builder, from a config ``resolve_pretrained`` returned."""
    return build_pretrained_unet(
        ENCODERS.get(cfg.backbone),
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        weights=cfg.encoder_weights,
        freeze=cfg.freeze or cfg.freeze_epochs > 0,
        input_adapter=cfg.input_adapter,
        skip_merge=cfg.skip_merge,
        dropout=cfg.dropout,
        activation=cfg.head,
        block=cfg.block,
        attention=cfg.attention,
    )
