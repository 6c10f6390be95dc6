"""How long one training step of a planned config takes on this machine.

Budgets are turned into steps by measuring, not guessing: the planned network is
built and compiled as ``fit`` does and trained for a few steps on random data of the
planned batch shape; the first step (tracing) is not counted.
"""

from __future__ import annotations

import time
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


def seconds_per_step(cfg: RunConfig, channels: int, steps: int = TIMED_STEPS) -> float:
    """Median seconds per training step of ``cfg`` (batch, input size, precision) here."""
    return time_steps(cfg, channels, steps).per_step


def time_steps(cfg: RunConfig, channels: int, steps: int = TIMED_STEPS) -> StepTiming:
    """The first step (tracing) and the median of ``steps`` more, of ``cfg`` on this machine."""
    side = cfg.input_size
    model_cfg = resolve_model_config(replace(cfg.model, in_channels=channels), side)
    precision = resolve_precision(cfg.train.precision)
    cfg = replace(cfg, model=model_cfg, train=replace(cfg.train, precision=precision))
    rng = np.random.default_rng(0)
    batch = cfg.train.batch_size
    x = rng.random((batch, side, side, channels), dtype=np.float32)
    y = (rng.random((batch, side, side, 1)) > 0.5).astype(np.float32)
    with precision_policy(precision):
        model = build_compiled_model(cfg)
        started = time.perf_counter()
        model.train_on_batch(x, y)  # tracing and the first step are not counted
        first = time.perf_counter() - started
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - started)
    return StepTiming(float(np.median(times)), first)
