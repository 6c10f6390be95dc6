"""Dice/IoU/precision/recall: NumPy and Keras versions against hand counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from unet_tf.evaluation.confusion import (
    Confusion,
    confusion,
    dice_score,
    iou_score,
    scores_from_counts,
)
from unet_tf.training.metrics import Dice, IoU, Precision, Recall

TRUTH = np.array([[1, 1, 0], [0, 1, 0]], bool)
PRED = np.array([[1, 0, 1], [0, 1, 0]], bool)  # tp 2, fp 1, fn 1, tn 2


def test_counts_and_scores_by_hand():
    c = confusion(PRED, TRUTH)
    assert c == Confusion(tp=2, fp=1, fn=1, tn=2)
    s = c.scores()
    assert s["dice"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # 2|A∩B|/(|A|+|B|) = 4/6
    assert s["iou"] == pytest.approx(2 / 4)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)


def test_dice_is_not_the_union_formula():
    # The first study divided by the union; Dice and IoU must differ here.
    assert dice_score(PRED, TRUTH) == pytest.approx(2 / 3)
    assert iou_score(PRED, TRUTH) == pytest.approx(1 / 2)


def test_empty_mask_conventions():
    empty = np.zeros((3, 3), bool)
    assert scores_from_counts(0, 0, 0) == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    one = empty.copy()
    one[1, 1] = True
    assert confusion(empty, one).scores() == {
        "dice": 0.0,
        "iou": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }
    assert confusion(one, empty).scores()["recall"] == 0.0


def test_mask_restricts_counting():
    fov = np.array([[1, 1, 0], [1, 1, 1]], bool)  # hides the false positive at (0, 2)
    assert confusion(PRED, TRUTH, fov) == Confusion(tp=2, fp=0, fn=1, tn=2)


def test_dataset_counts_add_up():
    total = confusion(PRED, TRUTH) + confusion(TRUTH, TRUTH)
    assert total == Confusion(tp=5, fp=1, fn=1, tn=5)


def _keras_value(metric, y, p, w=None):
    metric.update_state(y, p, sample_weight=w)
    return float(metric.result())


def test_keras_metrics_match_numpy_and_threshold_at_half():
    y = TRUTH.astype(np.float32)[None, ..., None]
    p = np.where(PRED, 0.7, 0.3).astype(np.float32)[None, ..., None]
    expected = confusion(PRED, TRUTH).scores()
    for metric in (Dice(), IoU(), Precision(), Recall()):
        assert _keras_value(metric, y, p) == pytest.approx(expected[metric.name], rel=1e-6)
    # 0.5 exactly is background (p > threshold is foreground)
    assert _keras_value(Dice(), y, np.full_like(p, 0.5)) == 0.0


def test_keras_metric_accumulates_over_batches_and_resets():
    y = TRUTH.astype(np.float32)[None, ..., None]
    p = PRED.astype(np.float32)[None, ..., None]
    m = Dice()
    m.update_state(y, p)
    m.update_state(y, y)
    assert float(m.result()) == pytest.approx(2 * 5 / (2 * 5 + 1 + 1))
    m.reset_state()
    assert float(m.result()) == 1.0  # nothing seen: empty convention


def test_keras_metric_weight_is_a_mask():
    y = TRUTH.astype(np.float32)[None, ..., None]
    p = PRED.astype(np.float32)[None, ..., None]
    w = np.array([[3, 3, 0], [1, 1, 1]], np.float32)[None]  # weight values do not scale counts
    assert _keras_value(Dice(), y, p, w) == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))


def test_keras_metrics_multiclass_micro_over_foreground():
    labels_true = np.array([[0, 1, 2], [2, 2, 0]])
    labels_pred = np.array([[0, 1, 1], [2, 0, 0]])
    y = np.eye(3, dtype=np.float32)[labels_true][None]
    p = np.eye(3, dtype=np.float32)[labels_pred][None]
    # class 1: tp 1, fp 1, fn 0; class 2: tp 1, fp 0, fn 2 -> tp 2, fp 1, fn 2
    assert _keras_value(Dice(), y, p) == pytest.approx(4 / (4 + 1 + 2))


def test_metrics_serialise():
    m = Precision(threshold=0.3)
    restored = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert isinstance(restored, Precision) and restored.threshold == 0.3
