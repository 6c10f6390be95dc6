"""``--backbone sm:<name>``: the U-Net of the segmentation-models library.

This is the route the first study took. The library is an optional extra
(``pip install unet-tf[sm]``) that only runs on Keras 3 through its ``tf.keras``
code path, so ``SM_FRAMEWORK=tf.keras`` is set in the package root before anything
imports it.

The library's ``Unet`` is wrapped, not changed: raw images go through the same
in-model input layers as the keras.applications encoders (``ByteRange``, channel
adapter, the backbone's own preprocessing as a ``PixelAffine``), are mirror-padded
to a multiple of 32 (its decoder concatenates without resizing) and cropped back,
and its linear output gets the config's float32 head (``ModelConfig.head``: sigmoid or
softmax) so mixed precision works.
``--freeze`` is its ``encoder_freeze``, which leaves BatchNorm layers trainable.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from types import ModuleType

import keras
from keras import layers

from unet_tf.config import SM_PREFIX, ModelConfig
from unet_tf.errors import UserError
from unet_tf.models.encoders.weights import weights_argument, weights_md5
from unet_tf.models.input_layers import PadToMultiple, encoder_input
from unet_tf.models.layers import MatchSize

MULTIPLE = 32
WEIGHTS_FILE = "Keras .h5 file of the backbone's ImageNet weights"  # for error messages
# Backbones whose construction fails on Keras 3, with the reason users should see.
REFUSED = {
    "densenet": "its layer names contain '/', which Keras 3 rejects",
}


def import_sm() -> ModuleType:
    """Import segmentation-models quietly, or say how to install it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its framework
            import segmentation_models
    except ImportError:
        raise UserError(
            "--backbone sm:... needs segmentation-models; install it with `pip install unet-tf[sm]`"
        ) from None
    return segmentation_models


def sm_name(backbone: str) -> str:
    return backbone[len(SM_PREFIX) :]


def check_backbone(sm: ModuleType, name: str) -> None:
    for prefix, reason in REFUSED.items():
        if name.startswith(prefix):
            raise UserError(
                f"segmentation-models backbone {name!r} does not work on Keras 3 ({reason}); "
                "choose another, e.g. sm:resnet34 or sm:efficientnetb0"
            )
    available = sorted(
        n for n in sm.get_available_backbone_names() if not n.startswith(tuple(REFUSED))
    )
    if name not in available:
        raise UserError(
            f"unknown segmentation-models backbone {name!r}; choose one of "
            f"{', '.join(SM_PREFIX + n for n in available)}"
        )


def resolve_sm(cfg: ModelConfig, input_size: int) -> ModelConfig:
    """Check the backbone, size and weights; fill in depth (the library's 5) and md5."""
    check_backbone(import_sm(), sm_name(cfg.backbone))
    if input_size < MULTIPLE:
        raise UserError(f"--size/--patch {input_size} is too small; sm backbones need 32 px")
    md5 = weights_md5(cfg.encoder_weights, WEIGHTS_FILE)
    return replace(cfg, depth=5, encoder_weights_md5=md5)


def build_sm_unet(cfg: ModelConfig) -> keras.Model:
    """The registry's builder for ``sm:<name>``, from a config ``resolve_sm`` returned."""
    sm = import_sm()
    name = sm_name(cfg.backbone)
    inputs = keras.Input((None, None, cfg.in_channels), name="image")
    x = encoder_input(
        inputs, cfg.in_channels, cfg.input_adapter, sm.get_preprocessing(name), cfg.backbone
    )
    x = PadToMultiple(MULTIPLE, name="pad_to_32")(x)
    try:
        unet = sm.Unet(
            name,
            input_shape=(None, None, 3),
            classes=cfg.num_classes,
            activation="linear",
            encoder_weights=weights_argument(cfg.encoder_weights, WEIGHTS_FILE),
            encoder_freeze=cfg.freeze or cfg.freeze_epochs > 0,
        )
    except Exception as exc:  # downloads and weight files fail with assorted types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot build {cfg.backbone} with encoder weights {cfg.encoder_weights!r}: "
            f"{reason}; pass --encoder-weights none or a local .h5 file"
        ) from None
    logits = MatchSize("crop", name="crop_to_input")([unet(x), inputs])
    head = cfg.head
    outputs = layers.Activation(head, dtype="float32", name=f"head_{head}")(logits)
    return keras.Model(inputs, outputs, name=f"unet_sm_{name}")


def load_options(backbone: str) -> dict:
    """Extra ``keras.saving.load_model`` arguments for a model with this backbone.

    segmentation-models registers its custom objects (EfficientNet's) on import, and
    its InceptionResNetV2 / InceptionV3 hold Python lambdas, which Keras only
    deserialises with ``safe_mode=False``. Only files unet-tf wrote itself are loaded
    this way: the run's config names the backbone.
    """
    if not backbone.startswith(SM_PREFIX):
        return {}
    import_sm()
    return {"safe_mode": False}
