"""``unet-tf plan``: a complete, explained recipe from a dataset's own fingerprint.

Like nnU-Net's experiment planning: :mod:`~unet_tf.planning.fingerprint` measures the
data, :mod:`~unet_tf.planning.rules` turns the measurements (and a time budget,
converted to steps by :mod:`~unet_tf.planning.timing`) into a config with a reason for
every choice.
"""

from __future__ import annotations

import re

from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import data_root, is_time_series, read_dataset
from unet_tf.errors import UserError
from unet_tf.planning.fingerprint import Fingerprint, fingerprint
from unet_tf.planning.rules import Plan, derive_plan
from unet_tf.planning.timing import seconds_per_step, time_validation

__all__ = ["Fingerprint", "Plan", "parse_duration", "plan_dataset"]

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``20m``, ``1h30m`` or a plain number of minutes."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise UserError(f"--budget {text!r} is not a duration; write e.g. 20m, 1h30m or 90s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UserError("--budget must be longer than 0 s")
    return total


def plan_dataset(
    base: RunConfig, budget_seconds: float | None = None, time_steps: bool = True
) -> Plan:
    """Fingerprint ``base.data`` (the training data) and derive its plan.

    ``base`` carries the data settings (folder, format, mask threshold); the plan
    replaces the recipe settings. With a budget, a few training steps are timed here.
    """
    samples = read_dataset(data_root(base.data), base.data)
    fp = fingerprint(samples, is_time_series(base.data), base.data.mask_threshold)
    timer = (lambda cfg: seconds_per_step(cfg, fp.channels)) if time_steps else None
    # fit validates on about a fifth of the images; their shapes decide its cost
    every = max(1, round(1 / base.data.val_split)) if base.data.val_split > 0 else 0
    shapes = [s.shape for s in samples[::every]] if every else []
    validation = (lambda cfg: time_validation(cfg, fp.channels, shapes)) if time_steps else None
    return derive_plan(fp, base, budget_seconds, timer, validation)
