"""``build_model(cfg)``: one registry for every architecture, like smp's ``create_model``.

Building is two steps. ``resolve_model_config`` is pure: it checks the config
against the training input size and returns a copy with what the build will use
filled in (``depth``, ``encoder_weights_md5``), so training can record it in
``config.yaml`` before anything is built. A route's builder then turns a resolved
config into an uncompiled functional Keras model with a float32 probability output,
never writing to the config.

The routes are the scratch U-Net (``none``), one per entry of the encoder registry
(``unet_tf.models.encoders``) and segmentation-models' U-Net (``sm:<name>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import keras

from unet_tf.config import SM_PREFIX, ModelConfig
from unet_tf.errors import UserError
from unet_tf.models.encoders import ENCODERS
from unet_tf.models.pretrained import build_pretrained, resolve_pretrained
from unet_tf.models.sm import MULTIPLE, build_sm_unet, resolve_sm
from unet_tf.models.unet import build_unet, resolve_depth

SCRATCH = "none"
SM = "sm"


class Route(NamedTuple):
    """How one kind of backbone resolves its config and builds from the result."""

    resolve: Callable[[ModelConfig, int], ModelConfig]
    build: Callable[[ModelConfig], keras.Model]


def _resolve_scratch(cfg: ModelConfig, input_size: int) -> ModelConfig:
    try:
        depth = resolve_depth(cfg.depth, input_size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return replace(cfg, depth=depth, encoder_weights_md5=None)  # no encoder, no weights file


def _build_scratch(cfg: ModelConfig) -> keras.Model:
    return build_unet(
        in_channels=cfg.in_channels,
        num_classes=cfg.num_classes,
        depth=cfg.depth,
        base_filters=cfg.base_filters,
        skip_merge=cfg.skip_merge,
        dropout=cfg.dropout,
        kernel_init=cfg.kernel_init,
        activation=cfg.head,
        block=cfg.block,
        attention=cfg.attention,
    )


BUILDERS: dict[str, Route] = {
    SCRATCH: Route(_resolve_scratch, _build_scratch),
    **{name: Route(resolve_pretrained, build_pretrained) for name in ENCODERS.names()},
    SM: Route(resolve_sm, build_sm_unet),  # sm:<name>
}


def backbone_names() -> list[str]:
    return [n if n != SM else f"{SM_PREFIX}<name>" for n in BUILDERS]


def _route(backbone: str) -> Route:
    key = SM if backbone.startswith(SM_PREFIX) else backbone
    if key not in BUILDERS:
        raise UserError(
            f"unknown backbone {backbone!r}; choose one of {', '.join(backbone_names())}"
        )
    return BUILDERS[key]


def resolve_model_config(cfg: ModelConfig, input_size: int) -> ModelConfig:
    """A copy of ``cfg`` with ``depth`` and ``encoder_weights_md5`` filled in.

    Raises ``UserError`` for an unknown backbone, a depth or ``input_size`` the
    network cannot have, and a missing or non-.h5 weights file. Nothing is built or
    downloaded; calling it on a resolved config returns an equal one.
    """
    return _route(cfg.backbone).resolve(cfg, input_size)


def build_model(cfg: ModelConfig, input_size: int) -> keras.Model:
    """Build the network ``cfg.backbone`` names; ``cfg.in_channels`` must be set.

    ``cfg`` is resolved here (a resolved one passes unchanged) and is not modified:
    callers that record the config use ``resolve_model_config`` themselves.
    """
    if cfg.in_channels is None:
        raise ValueError("cfg.in_channels must be resolved from the data before building")
    route = _route(cfg.backbone)
    return route.build(route.resolve(cfg, input_size))


def min_input_size(cfg: ModelConfig) -> int:
    """Smallest image side the built network accepts."""
    if cfg.backbone in ENCODERS:
        return ENCODERS.get(cfg.backbone).min_size
    if cfg.backbone.startswith(SM_PREFIX):
        return MULTIPLE
    return 2 ** ((cfg.depth or 1) + 1)
