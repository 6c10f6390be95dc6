"""The configuration, resolved once: what the data and the machine decide.

A requested config leaves some settings open (``in_channels``, ``depth``,
``precision: auto``, the validation split, the weights' md5). :func:`resolve_config`
fills them all in one place, from the training images and this machine, and returns
a new config; nothing else writes into a config. The result is what ``config.yaml``
records, so a run can be repeated exactly and inference knows how it was trained.
"""

from __future__ import annotations

from dataclasses import replace

from unet_tf import __version__
from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import DATASET_FORMATS
from unet_tf.data.sample import Sample
from unet_tf.models import resolve_model_config
from unet_tf.runtime.precision import resolve_precision
from unet_tf.training.losses import LOSSES


def check_choices(cfg: RunConfig) -> None:
    """Every named choice against the registry that owns it (configs from YAML too)."""
    LOSSES.check(cfg.train.loss)
    if cfg.data.format != "auto":
        DATASET_FORMATS.check(cfg.data.format)


def resolve_config(cfg: RunConfig, train: list[Sample], val: list[Sample]) -> RunConfig:
    """``cfg`` with the channels, depth, weights md5, precision, split and version filled in.

    The validation names are recorded when the validation images were split off the
    training data (not given with ``--val`` or ``--val-sequences``), so a rerun draws
    the same split.
    """
    check_choices(cfg)
    model = resolve_model_config(replace(cfg.model, in_channels=train[0].channels), cfg.input_size)
    split = not (cfg.data.val or cfg.data.val_sequences)
    data = replace(cfg.data, val_names=[s.name for s in val] if split and val else None)
    training = replace(cfg.train, precision=resolve_precision(cfg.train.precision))
    return replace(cfg, model=model, data=data, train=training, version=__version__)
