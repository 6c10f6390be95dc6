"""How long one training step of a planned config takes on this machine.

Budgets are turned into steps by measuring, not guessing: the planned network is
built and compiled as ``fit`` does and trained for a few steps on random data of the
planned batch shape; the first step (tracing) is not counted. One validation pass is
timed too, because the budget's clock counts it at the end of every epoch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.models import resolve_model_config
from unet_tf.runtime.precision import precision_policy, resolve_precision
from unet_tf.training.fit import build_compiled_model

TIMED_STEPS = 3


@dataclass(frozen=True)
class StepTiming:
    per_step: float  # median seconds of a training step after the first
    first: float  # seconds of the first step: tracing the graph, which fit pays once too


def time_validation(cfg: RunConfig, channels: int, shapes: Sequence[tuple[int, int]]) -> float:
    """Seconds of one end-of-epoch validation of ``cfg`` over images of ``shapes`` (H, W).

    Fed as ``fit`` feeds them: resized images in batches of the batch size, full-size
    images for patch training one by one. Each distinct input shape is traced once
    first (``fit`` traces once too) and then timed.
    """
    if not shapes:
        return 0.0
    cfg = _resolved(cfg, channels)
    if cfg.data.patch:
        calls = Counter((1, h, w) for h, w in shapes)
    else:
        batch, side = cfg.train.batch_size, cfg.data.size
        full, rest = divmod(len(shapes), batch)
        calls = Counter({(batch, side, side): full})
        if rest:
            calls[(rest, side, side)] += 1
    total = 0.0
    with precision_policy(cfg.train.precision):
        model = build_compiled_model(cfg)
        outputs = model.output_shape[-1]
        for (n, h, w), count in calls.items():
            x = np.zeros((n, h, w, channels), np.float32)
            y = np.zeros((n, h, w, outputs), np.float32)
            model.test_on_batch(x, y)  # tracing
            started = time.perf_counter()
            model.test_on_batch(x, y)
            total += (time.perf_counter() - started) * count
    return total


def _resolved(cfg: RunConfig, channels: int) -> RunConfig:
    """``cfg`` with the depth and precision ``fit`` would resolve, for ``channels`` inputs."""
    model_cfg = resolve_model_config(replace(cfg.model, in_channels=channels), cfg.input_size)
    precision = resolve_precision(cfg.train.precision)
    return replace(cfg, model=model_cfg, train=replace(cfg.train, precision=precision))


def seconds_per_step(cfg: RunConfig, channels: int, steps: int = TIMED_STEPS) -> float:
    """Median seconds per training step of ``cfg`` (batch, input size, precision) here."""
    return time_steps(cfg, channels, steps).per_step


def time_steps(cfg: RunConfig, channels: int, steps: int = TIMED_STEPS) -> StepTiming:
    """The first step (tracing) and the median of ``steps`` more, of ``cfg`` on this machine."""
    side = cfg.input_size
    cfg = _resolved(cfg, channels)
    rng = np.random.default_rng(0)
    batch = cfg.train.batch_size
    x = rng.random((batch, side, side, channels), dtype=np.float32)
    with precision_policy(cfg.train.precision):
        model = build_compiled_model(cfg)
        y = (rng.random((batch, side, side, model.output_shape[-1])) > 0.5).astype(np.float32)
        started = time.perf_counter()
        model.train_on_batch(x, y)  # tracing and the first step are not counted
        first = time.perf_counter() - started
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - started)
    return StepTiming(float(np.median(times)), first)
