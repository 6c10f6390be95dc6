"""Training callbacks: the learning-rate schedules and TensorBoard prediction images."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.config import TrainConfig
from unet_tf.runtime.distribute import lr_factor
from unet_tf.viz import contrast_stretch


def lr_schedule(cfg: TrainConfig, epochs: int) -> keras.callbacks.Callback | None:
    """The configured schedule as a callback (it also logs ``learning_rate``)."""
    base = cfg.lr * lr_factor(cfg.scale_lr)  # call in the strategy's scope
    if cfg.lr_schedule == "none":
        return None
    if cfg.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(2, epochs // 10), verbose=0
        )
    fn: Callable[[int], float]
    if cfg.lr_schedule == "step":
        fn = lambda epoch: step_lr(base, epoch, epochs)  # noqa: E731
    else:
        fn = lambda epoch: base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))  # noqa: E731
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: float(fn(epoch)))


def step_lr(base: float, epoch: int, epochs: int) -> float:
    """The first study's schedule: x0.75 at 50% and again at 75% of the epochs."""
    drops = (epoch >= 0.5 * epochs) + (epoch >= 0.75 * epochs)
    return base * 0.75**drops


class PredictionImages(keras.callbacks.Callback):
    """Log input | truth | prediction for a few validation images to TensorBoard."""

    def __init__(self, log_dir: Path, images: np.ndarray, targets: np.ndarray, every: int = 1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "images"))
        self.images, self.targets, self.every = images, targets, every

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


def _grey(x: np.ndarray) -> np.ndarray:
    """An (H, W, C) image as a contrast-stretched [0, 1] single channel for display."""
    return contrast_stretch(x.mean(axis=-1, keepdims=True) if x.shape[-1] > 1 else x)
