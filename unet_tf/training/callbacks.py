"""Training callbacks: the learning-rate schedules, the budget's clock and TensorBoard images."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.atomic import atomic_write_text
from unet_tf.config import TrainConfig
from unet_tf.runtime.distribute import lr_factor
from unet_tf.viz import contrast_stretch

VALIDATION_SHARE = 0.15  # of a --budget, kept for validation and the final scoring
# A budgeted run may train this many times its planned epochs: the plan comes from a step
# timing, and training goes on until the clock stops it, however fast the steps run.
BUDGET_EPOCHS_CAP = 4
CLOCK_EVERY = 10.0  # seconds between writes of a budgeted run's clock file
SHOWN_SIDE = 256  # px: TensorBoard's validation images show at most this much of each image


def lr_schedule(
    cfg: TrainConfig,
    epochs: int,
    steps_per_epoch: int | None = None,
    clock: BudgetClock | None = None,
) -> keras.callbacks.Callback | None:
    """The configured schedule as a callback (it also logs ``learning_rate``).

    With a budget (``cfg.budget_steps``) the LR is set before every batch: from the
    budget's training time spent when there is a clock (the x0.75 drops at 50% and 75%
    of it), else from the planned optimizer steps; otherwise the schedule follows the
    epochs.
    """
    base = cfg.lr * lr_factor(cfg.scale_lr)  # call in the strategy's scope
    if cfg.lr_schedule == "none":
        return None
    if cfg.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(2, epochs // 10), verbose=0
        )
    fn: Callable[[float], float]  # of the progress through training, 0..1
    if cfg.lr_schedule == "step":
        fn = lambda progress: step_lr(base, progress, 1.0)  # noqa: E731
    else:
        fn = lambda progress: base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))  # noqa: E731
    if cfg.budget_steps and steps_per_epoch:
        return StepSchedule(fn, cfg.budget_steps, steps_per_epoch, clock)
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(fn(epoch / epochs)))


def step_lr(base: float, epoch: float, epochs: float) -> float:
    """The first study's schedule: x0.75 at 50% and again at 75% of the epochs (or steps)."""
    drops = (epoch >= 0.5 * epochs) + (epoch >= 0.75 * epochs)
    return base * 0.75**drops


class StepSchedule(keras.callbacks.Callback):
    """Set the LR before every batch from the progress through a budgeted run.

    With the budget's clock the progress is the share of its training time spent: the
    run trains until the clock stops it, so the schedule spans the time, not the steps
    planned from a timing taken before training. That timing leaves out validation and
    saving, and a busy machine can make it too slow or too fast; led by the steps, a run
    either stopped before its last drops or finished them and left time unspent. Without
    a clock (a test, or a caller's own loop) the progress is the share of the planned
    steps done (epoch x steps per epoch + batch).
    """

    def __init__(
        self,
        fn: Callable[[float], float],
        total_steps: int,
        steps_per_epoch: int,
        clock: BudgetClock | None = None,
    ):
        super().__init__()
        self.fn, self.total, self.clock = fn, total_steps, clock
        self.steps_per_epoch = steps_per_epoch
        self.epoch, self.current = 0, None

    def progress(self, batch: int) -> float:
        if self.clock is not None:
            return self.clock.spent() / self.clock.limit
        return (self.epoch * self.steps_per_epoch + batch) / self.total

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        lr = float(self.fn(self.progress(batch)))
        if lr != self.current:
            self.model.optimizer.learning_rate = lr
            self.current = lr

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))


class EpochClock(keras.callbacks.Callback):
    """Log ``seconds`` and ``cpu_seconds`` of training, validation included, at each epoch's end.

    They go into ``history.csv`` and TensorBoard, so the time a run took to reach a
    score (time to accuracy) can be read from its history, and a resumed run's
    ``metrics.json`` counts the time its earlier sessions spent. ``before`` is what
    earlier sessions of a resumed run (or earlier phases) spent, from the history's
    last row: wall-clock and CPU seconds.
    """

    def __init__(self, before: float = 0.0, cpu_before: float = 0.0):
        super().__init__()
        self.before, self.cpu_before = before, cpu_before
        self.started: tuple[float, float] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and self.started is not None:
            wall, cpu = self.started
            logs["seconds"] = round(self.before + time.perf_counter() - wall, 1)
            logs["cpu_seconds"] = round(self.cpu_before + time.process_time() - cpu, 1)


class BudgetClock(keras.callbacks.Callback):
    """Stop training at the end of the batch that spends the budget's training share.

    The wall clock counts across a killed run's sessions: ``seconds`` and ``steps`` start
    from what the resumed backup (or the clock file, written every ``CLOCK_EVERY``
    seconds, which also counts an epoch the kill cut short) recorded. One clock serves
    every phase of a run, so the budget covers them together. Keras still ends the
    stopped epoch as usual (validation, history, models, backup), so a stopped run
    finishes like any other.
    """

    def __init__(self, limit: float, path: Path, seconds: float = 0.0, steps: int = 0):
        super().__init__()
        self.limit, self.path = limit, path
        self.before, self.steps = seconds, steps
        self.started: float | None = None
        self.written = seconds

    def resume(self, seconds: float, steps: int) -> None:
        """Carry on from a backup's record (the larger counts win: time only goes on)."""
        self.before, self.steps = max(self.before, seconds), max(self.steps, steps)

    def spent(self) -> float:
        running = time.perf_counter() - self.started if self.started is not None else 0.0
        return self.before + running

    def state(self) -> dict:
        """What a backup records, so a resumed run counts what was spent."""
        return {"seconds_trained": round(self.spent(), 3), "steps_done": self.steps}

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.started is None:  # the first phase; later phases go on counting
            self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        spent = self.spent()
        if spent >= self.limit:
            self.model.stop_training = True
        if spent - self.written >= CLOCK_EVERY:
            self.save()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Keras counts epochs up to the cap ("Epoch 3/52"); this is the share that matters.
        if logs is not None:
            logs["budget_spent"] = round(min(1.0, self.spent() / self.limit), 3)
        self.save()

    def save(self) -> None:
        spent = self.spent()
        atomic_write_text(self.path, json.dumps({"seconds_trained": round(spent, 3)}))
        self.written = spent


def read_clock(path: Path) -> float:
    """Seconds a budgeted run's clock file recorded (0 when there is none)."""
    try:
        return float(json.loads(path.read_text())["seconds_trained"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


class PredictionImages(keras.callbacks.Callback):
    """Log input | truth | prediction for a few validation images to TensorBoard.

    Images larger than :data:`SHOWN_SIDE` show their centre at full resolution: the
    prediction runs every epoch, and on three whole DRIVE images (565x584) it took 1.9 s
    of each 14 s epoch of a budgeted run, time the budget no longer trained.
    """

    def __init__(self, log_dir: Path, images: np.ndarray, targets: np.ndarray, every: int = 1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "images"))
        self.images, self.targets = centre_crop(images), centre_crop(targets)
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every:
            return
        # A direct call runs on one device; predict() would split 1-3 images over replicas.
        probs = np.asarray(self.model(self.images, training=False), np.float32)
        rows = [
            np.concatenate([_grey(img), t[..., -1:], p[..., -1:]], axis=1)
            for img, t, p in zip(self.images, self.targets, probs, strict=True)
        ]
        with self.writer.as_default():  # step = the 1-based epoch, as in history.csv
            tf.summary.image("validation/input_truth_prediction", np.stack(rows), step=epoch + 1)
        self.writer.flush()


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard with the epoch scalars at step 1, 2, ... (Keras logs from 0).

    The step then matches ``history.csv``, the console's ``Epoch 1/40`` and
    ``metrics.json``'s ``best_epoch``, so a curve read in TensorBoard names the same epoch.
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


def centre_crop(batch: np.ndarray, side: int = SHOWN_SIDE) -> np.ndarray:
    """The central ``side`` x ``side`` window of a (B, H, W, C) batch (less where smaller)."""
    h, w = batch.shape[1:3]
    top, left = max(h - side, 0) // 2, max(w - side, 0) // 2
    return batch[:, top : top + side, left : left + side]


def _grey(x: np.ndarray) -> np.ndarray:
    """An (H, W, C) image as a contrast-stretched [0, 1] single channel for display."""
    return contrast_stretch(x.mean(axis=-1, keepdims=True) if x.shape[-1] > 1 else x)
