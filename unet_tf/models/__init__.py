"""``build_model(cfg)``: one registry for every architecture, like smp's ``create_model``.

A builder takes the model config and the training input size and returns an
uncompiled functional Keras model with a float32 probability output.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models.encoders import ENCODERS
from unet_tf.models.pretrained import build_from_config
from unet_tf.models.sm import MULTIPLE, build_sm_unet
from unet_tf.models.unet import build_unet, resolve_depth

Builder = Callable[[ModelConfig, int], keras.Model]


def _scratch(cfg: ModelConfig, input_size: int) -> keras.Model:
    try:
        cfg.depth = resolve_depth(cfg.depth, input_size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return build_unet(
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        depth=cfg.depth,
        base_filters=cfg.base_filters,
        skip_merge=cfg.skip_merge,
        dropout=cfg.dropout,
        kernel_init=cfg.kernel_init,
    )


BUILDERS: dict[str, Builder] = {
    "none": _scratch,
    **{name: build_from_config for name in ENCODERS},
    "sm": build_sm_unet,  # sm:<name>
}


def backbone_names() -> list[str]:
    return [n if n != "sm" else "sm:<name>" for n in BUILDERS]


def build_model(cfg: ModelConfig, input_size: int) -> keras.Model:
    """Build the network ``cfg.backbone`` names; ``cfg.in_channels`` must be set."""
    if cfg.in_channels is None:
        raise ValueError("cfg.in_channels must be resolved from the data before building")
    key = "sm" if cfg.backbone.startswith("sm:") else cfg.backbone
    if key not in BUILDERS:
        raise UserError(
            f"unknown backbone {cfg.backbone!r}; choose one of {', '.join(backbone_names())}"
        )
    return BUILDERS[key](cfg, input_size)


def min_input_size(cfg: ModelConfig) -> int:
    """Smallest image side the built network accepts."""
    if cfg.backbone in ENCODERS:
        return ENCODERS[cfg.backbone].min_size
    if cfg.backbone.startswith("sm:"):
        return MULTIPLE
    return 2 ** ((cfg.depth or 1) + 1)
