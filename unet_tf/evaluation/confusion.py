"""Overlap scores from pixel counts, in NumPy: what ``evaluate`` reports.

Dice is 2|A∩B| / (|A| + |B|); IoU is |A∩B| / |A∪B|. (The first study divided by the
union for its "Dice", which is IoU; we do not.) Conventions for empty masks: when
both prediction and truth are empty every score is 1.0; precision with no predicted
pixels is 1.0 only if there was nothing to find, and likewise recall. The Keras
metrics that stream the same scores during training are in
``unet_tf.training.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORES = ("dice", "iou", "precision", "recall")


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of one image or a whole dataset."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def scores(self) -> dict[str, float]:
        return scores_from_counts(self.tp, self.fp, self.fn)


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num / den) if den > 0 else empty


def scores_from_counts(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Dice, IoU, precision and recall from pixel counts, with the empty-mask conventions."""
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, 1.0),
        "iou": _ratio(tp, tp + fp + fn, 1.0),
        "precision": _ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0),
        "recall": _ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0),
    }


def confusion(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> Confusion:
    """Count pixels of two boolean masks, optionally only where ``mask`` is true."""
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if mask is not None:
        mask = np.asarray(mask, bool)
        pred, truth = pred[mask], truth[mask]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    return Confusion(tp, fp, fn, int(pred.size) - tp - fp - fn)


def dice_score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    return confusion(pred, truth, mask).scores()["dice"]


def iou_score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    return confusion(pred, truth, mask).scores()["iou"]
