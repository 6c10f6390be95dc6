"""``Unet``: a U-Net builder that takes ``segmentation_models.Unet``'s arguments.

Code written for the segmentation-models library moves over by changing the import::

    import segmentation_models as sm        ->   from unet_tf.models.api import Unet
    model = sm.Unet("resnet50", input_shape=(None, None, 3), classes=1,
                    activation="sigmoid", encoder_weights="imagenet")
                                            ->   model = Unet("resnet50", ...same arguments)

(``unet_tf.Unet`` is the same function.) The model is built the way ``unet-tf fit``
builds it, through a ``ModelConfig`` and ``build_model``, so it has the same input
layers: it takes raw images (8-bit, 16-bit or float, any size of at least the
encoder's minimum) and returns float32 probabilities. Unlike ``sm.Unet``, the
spatial part of ``input_shape`` only checks that size against the encoder; the
network itself always accepts any size.
"""

from __future__ import annotations

import keras

from unet_tf.config import ModelConfig, RunConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model, min_input_size

ACTIVATIONS = ("sigmoid", "softmax")
OPEN_SIZE = 4096  # the input size to resolve against when input_shape leaves it open


def Unet(
    backbone_name: str = "none",
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    classes: int = 1,
    activation: str = "sigmoid",
    encoder_weights: str | None = "imagenet",
    encoder_freeze: bool = False,
    *,
    backbone: str | None = None,
    in_channels: int | None = None,
    base_filters: int = 32,
    depth: int | None = None,
    skip_merge: str = "resize",
    block: str = "plain",
    attention: bool = False,
    dropout: float = 0.0,
    input_adapter: str = "repeat",
    kernel_init: str = "glorot_uniform",
) -> keras.Model:
    """An uncompiled U-Net, as ``segmentation_models.Unet`` would build it.

    backbone_name: 'none' (the scratch U-Net), an ImageNet encoder (vgg16, resnet50,
        inceptionresnetv2) or 'sm:<name>' (segmentation-models' own U-Net).
        ``backbone=`` is the same, under unet-tf's name.
    input_shape: (height, width, channels); height and width may be None.
        ``in_channels=`` gives the channels alone.
    classes: the output channels: 1 for a binary mask, or N classes.
    activation: 'sigmoid' (every channel its own probability: binary, or multi-label
        as the distance target's two maps) or 'softmax' (one class per pixel, N >= 2).
    encoder_weights: 'imagenet' (Keras downloads them), None, or the path of a local
        Keras .h5 file of the encoder's ImageNet weights.
    encoder_freeze: keep the encoder's weights fixed and its BatchNorm in inference
        mode (for 'sm:<name>', segmentation-models' own freezing).
    The keyword-only rest are unet-tf's ``ModelConfig`` fields (``--base-filters``
    etc.); ``base_filters``, ``depth`` and ``kernel_init`` apply to the scratch U-Net,
    ``block='residual'`` to its levels and to an encoder's decoder, and
    ``attention=True`` gates the skips of either.

    Raises ``UserError`` (one line) for arguments the network cannot have.
    """
    named = None if backbone_name == "none" else backbone_name  # "none" is also the default
    backbone = _one_of("backbone_name", named, "backbone", backbone) or "none"
    height, width, channels = _shape(input_shape)
    shaped = None if tuple(input_shape) == (None, None, 3) else channels  # not the default
    channels = _one_of("input_shape[-1]", shaped, "in_channels", in_channels) or channels
    if activation not in ACTIVATIONS or (activation == "softmax" and classes < 2):
        raise UserError(
            f"activation {activation!r} with classes={classes} is not available; use "
            "activation='sigmoid' (any classes) or activation='softmax' with classes >= 2"
        )
    cfg = ModelConfig(
        backbone=backbone,
        depth=depth,
        base_filters=base_filters,
        skip_merge=skip_merge,
        block=block,
        attention=attention,
        dropout=dropout,
        kernel_init=kernel_init,
        num_classes=classes,
        activation=activation,
        in_channels=channels,
        encoder_weights="none" if encoder_weights is None else str(encoder_weights),
        freeze=encoder_freeze,
        input_adapter=input_adapter,
    )
    RunConfig(model=cfg).validate()  # the CLI's checks of the model fields
    known = [side for side in (height, width) if side is not None]
    size = min(known) if known else max(OPEN_SIZE, min_input_size(cfg))
    return build_model(cfg, size)


def _one_of(name: str, value, alias: str, alias_value):
    """An argument given under its name or its alias (None = not given); both must agree."""
    if value is not None and alias_value is not None and value != alias_value:
        raise UserError(f"{name}={value!r} and {alias}={alias_value!r} disagree; pass one")
    return value if alias_value is None else alias_value


def _shape(input_shape) -> tuple[int | None, int | None, int]:
    if len(input_shape) != 3 or not isinstance(input_shape[-1], int) or input_shape[-1] < 1:
        raise UserError(
            f"input_shape {tuple(input_shape)!r} must be (height, width, channels) with "
            "a channel count; height and width may be None"
        )
    return tuple(input_shape)
