"""Evaluation: DRIVE metrics inside a hand-made field of view, AUC, thresholds, reports."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.histograms import ProbabilityHistogram
from unet_tf.evaluation.matching import THRESHOLDS
from unet_tf.evaluation.report import ReportWriter
from unet_tf.evaluation.scoring import evaluate_samples
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import InferenceOptions, Predictor

# A 4x4 image: twelve pixels inside the field of view, the four corners outside.
FOV = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]], bool)
TRUTH = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]], np.uint8)
PROB = np.array(
    [
        [0.0, 0.9, 0.8, 0.9],  # corners: a missed vessel and a false one, both outside
        [0.7, 0.3, 0.6, 0.4],
        [0.1, 0.1, 0.05, 0.15],
        [0.0, 0.2, 0.02, 0.8],
    ],
    np.float32,
)


def fixed_network(probs: np.ndarray):
    """A network stand-in that returns the given probabilities for any one image."""
    return lambda batch: np.broadcast_to(probs[None, ..., None], (*batch.shape[:3], 1))


def tiny_cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth = 1, 1
    return cfg


def drive_sample(name: str = "eye", fov=FOV) -> Sample:
    image = np.zeros((4, 4, 1), np.uint8)
    return Sample(name=name, image=image, mask=TRUTH * 255, fov=fov)


def test_drive_metrics_count_only_pixels_inside_the_field_of_view():
    # Inside the FOV: vessels scored 0.9 0.8 0.7 0.3 0.2; background 0.6 0.4 0.15 0.1 0.1
    # 0.05 0.02. At 0.5: TP 3, FN 2, FP 1, TN 6. AUC: 31 of the 35 (vessel, background)
    # pairs are ordered correctly (0.3 and 0.2 lose to 0.6 and 0.4).
    predictor = Predictor(fixed_network(PROB), tiny_cfg(), InferenceOptions(tile=0))
    result = evaluate_samples(predictor, [drive_sample()])
    scores = result.images[0]
    assert result.columns == (
        "dice",
        "iou",
        "precision",
        "sensitivity",
        "specificity",
        "accuracy",
        "auc",
    )
    assert scores["sensitivity"] == pytest.approx(3 / 5)
    assert scores["specificity"] == pytest.approx(6 / 7)
    assert scores["accuracy"] == pytest.approx(9 / 12)
    assert scores["dice"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))  # F1
    assert scores["precision"] == pytest.approx(3 / 4)
    assert scores["auc"] == pytest.approx(31 / 35, abs=1e-4)
    # Without the FOV the dark corners count, and the scores change.
    whole = evaluate_samples(predictor, [drive_sample(fov=None)]).images[0]
    assert whole["dice"] != pytest.approx(scores["dice"]) and "auc" not in whole


def test_dataset_auc_pools_pixels_and_matches_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    truths = [rng.random((30, 40)) < 0.3 for _ in range(3)]
    probs = [np.clip(t * 0.3 + rng.random(t.shape) * 0.7, 0, 1) for t in truths]
    hist = sum(
        (ProbabilityHistogram.of(p, t) for p, t in zip(probs, truths, strict=True)),
        ProbabilityHistogram(),
    )
    pos = np.concatenate([p[t] for p, t in zip(probs, truths, strict=True)])
    neg = np.concatenate([p[~t] for p, t in zip(probs, truths, strict=True)])
    brute = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert hist.auc() == pytest.approx(brute, abs=1e-4)
    assert np.isnan(ProbabilityHistogram.of(probs[0], np.zeros_like(truths[0])).auc())


def test_dice_optimal_threshold_separates_the_classes():
    truth = np.zeros((10, 10), bool)
    truth[:4] = True
    prob = np.where(truth, 0.35, 0.123)
    hist = ProbabilityHistogram.of(prob, truth)
    threshold, dice = hist.best_threshold()
    assert threshold == pytest.approx(0.13) and dice == 1.0  # lowest t with p_bg <= t < p_fg
    assert hist.dice_at(np.array([0.5]))[0] == 0.0  # nothing above 0.5
    summary = hist.summary()
    assert summary["foreground"]["pixels"] == 40 and summary["foreground"]["mean"] == pytest.approx(
        0.35, abs=1e-4
    )


def test_json_has_no_nan_and_summaries_skip_images_without_vessels():
    predictor = Predictor(fixed_network(PROB), tiny_cfg(), InferenceOptions(tile=0))
    empty = drive_sample("no vessels")
    empty.mask = np.zeros((4, 4), np.uint8)
    result = evaluate_samples(predictor, [drive_sample(), empty])
    assert np.isnan(result.images[1]["auc"])
    assert result.mean()["auc"] == pytest.approx(result.images[0]["auc"])
    data = result.to_json()
    assert data["images"][1]["auc"] is None
    json.dumps(data, allow_nan=False)


def test_seg_is_reported_next_to_pixel_scores():
    truth = np.zeros((16, 16), np.uint16)
    truth[2:6, 2:6], truth[10:14, 10:14] = 1, 2  # two reference cells
    prob = (truth == 1).astype(np.float32)  # finds one of them exactly
    prob[0:2, 12:16] = 1.0  # and one false object
    predictor = Predictor(fixed_network(prob), tiny_cfg(), InferenceOptions(tile=0))
    sample = Sample("cells", np.zeros((16, 16, 1), np.uint8), mask=truth)
    result = evaluate_samples(predictor, [sample], instances=InstanceOptions())
    assert result.columns[-7:] == ("seg", "ap50", "map", "f1_50", "pq", "splits", "merges")
    # One exact match (IoU 1 at every threshold), one missed cell, one false object:
    # TP 1, FP 1, FN 1, so AP = 1/3 at every threshold, F1 = 1/2, PQ = 1 / (1 + 1/2 + 1/2).
    row = result.images[0]
    assert row["seg"] == pytest.approx(0.5)
    assert row["ap50"] == pytest.approx(1 / 3) and row["map"] == pytest.approx(1 / 3)
    assert row["f1_50"] == pytest.approx(0.5) and row["pq"] == pytest.approx(0.5)
    assert row["splits"] == row["merges"] == 0
    objects = result.to_json()["objects"]
    assert (objects["reference"], objects["predicted"], objects["matched"]) == (2, 2, 1)
    assert (objects["tp"], objects["fp"], objects["fn"]) == (1, 1, 1)
    assert [t["thresh"] for t in objects["thresholds"]] == list(THRESHOLDS)


def test_report_writes_tables_panels_and_figures(tmp_path):
    predictor = Predictor(fixed_network(PROB), tiny_cfg(), InferenceOptions(tile=0))
    history = tmp_path / "history.csv"
    history.write_text("epoch,dice,loss,val_dice,val_loss\n0,0.5,0.9,0.4,1.0\n1,0.7,0.6,0.6,0.8\n")
    predictor.history = history
    writer = ReportWriter(tmp_path / "report", predictor)
    samples = [drive_sample("eye 1"), drive_sample("eye 2")]
    result = evaluate_samples(predictor, samples, on_image=writer.add)
    files = writer.finish(result, "Test report")
    out = tmp_path / "report"
    assert {p.name for p in files} >= {"report.md", "scores.csv", "curves.png", "histogram.png"}
    rows = list(csv.reader((out / "scores.csv").open()))
    assert rows[0][:2] == ["image", "dice"] and [r[0] for r in rows[1:]] == [
        "eye 1",
        "eye 2",
        "mean",
        "std",
        "dataset",
    ]
    text = (out / "report.md").read_text()
    assert "| **mean ± std** |" in text and "panels/eye%201.png" in text
    panel = np.array(Image.open(out / "panels" / "eye 1.png"))
    assert panel.ndim == 3 and panel.shape[1] > 4 * 4  # four tiles side by side
    for figure in ("curves.png", "histogram.png"):
        assert Image.open(out / figure).size[0] >= 600
    with pytest.raises(Exception, match="already holds a report"):
        ReportWriter(out, predictor)
    ReportWriter(out, predictor, overwrite=True)
