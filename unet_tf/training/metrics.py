"""Overlap metrics streamed during training (Keras), with the conventions of
``unet_tf.evaluation.confusion`` (Dice is 2|A∩B| / (|A| + |B|), never the union formula).

The Keras metrics threshold probabilities at ``threshold`` (p > t is foreground)
and accumulate pixel counts over the whole epoch, so they report dataset-wide
(micro) scores. A sample weight acts as a mask: pixels with weight 0 (outside a
field of view) are ignored, all others count once. For a target of independent sigmoid
channels (``distance``) they score channel 0, the foreground, as a binary mask.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from unet_tf.data.targets import multilabel

PACKAGE = "unet_tf"


class ConfusionMetric(keras.metrics.Metric):
    """Accumulates thresholded TP/FP/FN over an epoch; subclasses pick the score."""

    score = "dice"

    def __init__(
        self, threshold: float = 0.5, name: str | None = None, channel: int | None = None, **kwargs
    ):
        super().__init__(name=name or self.score, **kwargs)
        self.threshold = threshold
        self.channel = channel  # score this sigmoid channel alone (None: every channel)
        self.tp = self.add_variable(shape=(), initializer="zeros", name="tp", dtype="float32")
        self.fp = self.add_variable(shape=(), initializer="zeros", name="fp", dtype="float32")
        self.fn = self.add_variable(shape=(), initializer="zeros", name="fn", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.float32)
        if self.channel is not None:
            y_pred = y_pred[..., self.channel : self.channel + 1]
            y_true = y_true[..., self.channel : self.channel + 1]
        if y_pred.shape[-1] == 1:
            pred = tf.cast(y_pred > self.threshold, tf.float32)
            truth = tf.cast(y_true > 0.5, tf.float32)
        else:  # one-hot of the arg-max, foreground classes only (micro average)
            classes = y_pred.shape[-1]
            pred = tf.one_hot(tf.argmax(y_pred, axis=-1), classes)[..., 1:]
            truth = y_true[..., 1:]
        valid = tf.ones_like(pred[..., :1])
        if sample_weight is not None:
            w = tf.cast(sample_weight, tf.float32)
            w = tf.reshape(w, [-1, 1, 1, 1]) if len(w.shape) == 1 else w
            w = w[..., None] if len(w.shape) == 3 else w
            valid = valid * tf.cast(w > 0, tf.float32)
        self.tp.assign_add(tf.reduce_sum(valid * pred * truth))
        self.fp.assign_add(tf.reduce_sum(valid * pred * (1.0 - truth)))
        self.fn.assign_add(tf.reduce_sum(valid * (1.0 - pred) * truth))

    def result(self):
        tp, fp, fn = self.tp, self.fp, self.fn
        if self.score == "dice":
            num, den, empty = 2 * tp, 2 * tp + fp + fn, 1.0
            return tf.where(den > 0, tf.math.divide_no_nan(num, den), empty)
        if self.score == "iou":
            num, den = tp, tp + fp + fn
            return tf.where(den > 0, tf.math.divide_no_nan(num, den), 1.0)
        other = fp if self.score == "precision" else fn  # precision: tp / (tp + fp)
        missed = fn if self.score == "precision" else fp
        empty = tf.where(missed > 0, 0.0, 1.0)
        den = tp + other
        return tf.where(den > 0, tf.math.divide_no_nan(tp, den), empty)

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "channel": self.channel}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Dice(ConfusionMetric):
    score = "dice"


@keras.saving.register_keras_serializable(package=PACKAGE)
class IoU(ConfusionMetric):
    score = "iou"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Precision(ConfusionMetric):
    score = "precision"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Recall(ConfusionMetric):
    score = "recall"


def training_metrics(threshold: float = 0.5, target: str = "binary") -> list[ConfusionMetric]:
    """Dice, IoU, precision and recall of the foreground ``target`` trains."""
    channel = 0 if multilabel(target) else None
    return [cls(threshold, channel=channel) for cls in (Dice, IoU, Precision, Recall)]
