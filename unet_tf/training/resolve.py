"""The configuration, resolved once: what the data and the machine decide.

A requested config leaves some settings open (``in_channels``, ``depth``,
``precision: auto``, the validation split and how it is drawn, the weights' md5).
:func:`resolve_config` fills them all in one place, from the training images and this
machine, and returns a new config; nothing else writes into a config. The result is
what ``config.yaml`` records, so a run can be repeated exactly and inference knows
how it was trained.
"""

from __future__ import annotations

from dataclasses import replace

from unet_tf import __version__
from unet_tf.config import TARGET_AUTO, DataConfig, RunConfig
from unet_tf.data.formats.registry import DATASET_FORMATS, is_time_series
from unet_tf.data.sample import Sample
from unet_tf.data.targets import TARGETS, band_width, default_target, has_instances
from unet_tf.errors import UserError
from unet_tf.models import resolve_model_config
from unet_tf.runtime.precision import resolve_precision
from unet_tf.training.losses import LOSSES


def check_choices(cfg: RunConfig) -> None:
    """Every named choice against the registry that owns it (configs from YAML too)."""
    LOSSES.check(cfg.train.loss)
    if cfg.data.format != "auto":
        DATASET_FORMATS.check(cfg.data.format)
    if cfg.data.target != TARGET_AUTO:
        TARGETS.check(cfg.data.target)


def resolve_split(data: DataConfig) -> DataConfig:
    """``data`` with ``split: auto`` decided: blocked for CTC and video frames, else random.

    Called before the split is drawn (it decides how) and again by
    :func:`resolve_config`, so ``config.yaml`` records the split that was used.
    """
    if data.split != "auto":
        return data
    return replace(data, split="blocked" if is_time_series(data) else "random")


def resolve_target(cfg: RunConfig, train: list[Sample]) -> RunConfig:
    """``cfg`` with ``target: auto`` decided and the output channels its target needs.

    Masks that store one label per cell (CTC, DSB, label TIFFs) get the separating
    target :func:`~unet_tf.data.targets.default_target` names. The head's activation is the
    target's (two sigmoids for ``distance``), else sigmoid for one channel, softmax for more.
    A band the target draws gets its width, the target's own unless ``--border-width``.
    """
    target = cfg.data.target
    if target == TARGET_AUTO:
        instances = any(s.mask is not None and has_instances(s.mask) for s in train)
        target = default_target(instances, cfg.model.num_classes, cfg.data.border_weights)
    channels = TARGETS.get(target).channels
    if channels is not None and cfg.model.num_classes not in (1, channels):
        raise UserError(
            f"--target {target} trains {channels} output channels, not --classes "
            f"{cfg.model.num_classes}; leave --classes out"
        )
    model = replace(
        cfg.model,
        num_classes=channels or cfg.model.num_classes,
        activation=TARGETS.get(target).activation,
    )
    model = replace(model, activation=model.head)  # config.yaml records the head built
    band = band_width(target, cfg.data.border_width)  # config.yaml records the band built
    return replace(cfg, model=model, data=replace(cfg.data, target=target, border_width=band))


def resolve_config(cfg: RunConfig, train: list[Sample], val: list[Sample]) -> RunConfig:
    """``cfg`` with the channels, depth, weights md5, precision, split and version filled in.

    The validation names are recorded when the validation images were split off the
    training data (not given with ``--val`` or ``--val-sequences``), so a rerun draws
    the same split.
    """
    check_choices(cfg)
    if cfg.data.object_size and not cfg.data.patch:
        # Checked here, after the plan: without --size or --patch the plan trains patches.
        raise UserError(
            "--object-size rescales images at full resolution, so it trains on --patch "
            "crops; leave --size out (or give --patch)"
        )
    cfg = resolve_target(cfg, train)
    model = resolve_model_config(replace(cfg.model, in_channels=train[0].channels), cfg.input_size)
    split = not (cfg.data.val or cfg.data.val_sequences)
    data = replace(
        resolve_split(cfg.data), val_names=[s.name for s in val] if split and val else None
    )
    training = replace(cfg.train, precision=resolve_precision(cfg.train.precision))
    return replace(cfg, model=model, data=data, train=training, version=__version__)
