"""Scoring predictions against ground truth at each image's full original size.

Pixel scores (Dice, IoU, precision, recall) are always reported. Datasets with a
field of view (DRIVE) are scored inside it only, with the retinal-vessel
literature's set: sensitivity, specificity, accuracy and ROC AUC (from the
probabilities) next to F1 = Dice. With instance evaluation the object scores are
added: the Cell Tracking Challenge's SEG, and from one-to-one IoU matching the DSB
2018 AP at IoU 0.5, its mean over 0.5-0.95, F1 at 0.5, panoptic quality, and the
split and merged cells (see :mod:`unet_tf.evaluation.matching`). Each image gets its
own row; the summary has the mean and standard deviation over images and
dataset-wide scores from pooled counts (pooled pixels for the pixel scores and AUC,
pooled reference objects for SEG, pooled TP / FP / FN and matched IoU for the
matching scores, summed splits and merges).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.data.targets import scored_classes, truth_labels
from unet_tf.evaluation.confusion import SCORES, Confusion, confusion
from unet_tf.evaluation.histograms import ProbabilityHistogram, foreground_probability
from unet_tf.evaluation.objects import (
    OBJECT_COLUMNS,
    ObjectScores,
    object_scores,
    reference_instances,
)
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import Predictor, to_mask
from unet_tf.inference.writers import WrittenPrediction
from unet_tf.runtime.progress import progress

FOV_SCORES = ("dice", "iou", "precision", "sensitivity", "specificity", "accuracy", "auc")


def image_confusion(pred: np.ndarray, truth: np.ndarray, classes: int, fov=None) -> Confusion:
    """Pixel counts for one image; multi-class sums the foreground classes (micro)."""
    if classes == 1:
        return confusion(pred > 0, truth > 0, fov)
    total = Confusion()
    for c in range(1, classes):
        total = total + confusion(pred == c, truth == c, fov)
    return total


def describe_prediction(written: WrittenPrediction) -> str:
    """``predict``'s line for one image: foreground pixels, Dice and IoU if it had a mask."""
    line = f"{written.name}: {int(np.count_nonzero(written.pred))} foreground px"
    if written.truth is not None:
        scores = image_confusion(written.pred, written.truth, written.classes).scores()
        line += f", Dice {scores['dice']:.4f}, IoU {scores['iou']:.4f}"
    if written.objects is not None:
        line += f", {written.objects} objects"
    return line


def all_scores(
    counts: Confusion, histogram: ProbabilityHistogram, objects: ObjectScores | None = None
) -> dict[str, float]:
    """Every score this module knows, from pixel counts, probabilities and objects."""
    tn_fp = counts.tn + counts.fp
    total = counts.tp + counts.fp + counts.fn + counts.tn
    scores = counts.scores()
    scores.update(
        sensitivity=scores["recall"],
        specificity=counts.tn / tn_fp if tn_fp else 1.0,
        accuracy=(counts.tp + counts.tn) / total if total else 1.0,
        auc=histogram.auc(),
    )
    if objects is not None:
        scores.update(objects.scores())
    return scores


def _nan_stat(values: list[float], stat: Callable) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(stat(finite)) if finite else float("nan")


def _json_safe(value):
    """NaN (e.g. AUC of an image without vessels) becomes null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass
class Evaluation:
    """Per-image scores, their mean and spread, and dataset-wide scores."""

    columns: tuple[str, ...] = SCORES
    images: list[dict] = field(default_factory=list)
    total: Confusion = field(default_factory=Confusion)
    histogram: ProbabilityHistogram = field(default_factory=ProbabilityHistogram)
    objects: ObjectScores | None = None

    def add(
        self,
        name: str,
        counts: Confusion,
        histogram: ProbabilityHistogram | None = None,
        objects: ObjectScores | None = None,
    ) -> None:
        histogram = histogram or ProbabilityHistogram()
        scores = all_scores(counts, histogram, objects)
        row = {"name": name, **{k: scores[k] for k in self.columns}}
        if objects is not None:
            row["objects"] = objects.counts()
            self.objects = objects if self.objects is None else self.objects + objects
        self.images.append(row)
        self.total = self.total + counts
        self.histogram = self.histogram + histogram

    def mean(self) -> dict[str, float]:
        return {k: _nan_stat([im[k] for im in self.images], np.mean) for k in self.columns}

    def std(self) -> dict[str, float]:
        return {k: _nan_stat([im[k] for im in self.images], np.std) for k in self.columns}

    def dataset(self) -> dict[str, float]:
        scores = all_scores(self.total, self.histogram, self.objects)
        return {k: scores[k] for k in self.columns}

    def summary(self) -> dict:
        return {"mean": self.mean(), "std": self.std(), "dataset": self.dataset()}

    def to_json(self, provenance: dict | None = None) -> dict:
        """The scores, and under ``provenance`` what they measured (model, data, settings).

        ``provenance`` comes from ``unet_tf.evaluation.provenance.evaluation_provenance``:
        a published number must say which model, threshold and images it is about.
        """
        out = {**self.summary(), "certainty": self.histogram.summary(), "images": self.images}
        if provenance is not None:
            out["provenance"] = provenance
        if self.objects is not None:
            out["objects"] = {
                **self.objects.counts(),
                "thresholds": self.objects.matches.per_threshold(),
            }
        return _json_safe(out)

    def table(self) -> str:
        """A fixed-width table: one row per image, then mean, std and the dataset scores."""
        width = max([len(im["name"]) for im in self.images] + [7])
        head = f"{'image':<{width}}  " + "  ".join(f"{k:>11}" for k in self.columns)

        def line(name: str, values: dict) -> str:
            return f"{name:<{width}}  " + "  ".join(_cell(values[k]) for k in self.columns)

        rows = [head, "-" * len(head)]
        rows += [line(im["name"], im) for im in self.images]
        rows.append("-" * len(head))
        rows += [line("mean", self.mean()), line("std", self.std())]
        rows.append(line("dataset", self.dataset()))
        return "\n".join(rows)


def _cell(value: float) -> str:
    """A table cell: counts (splits, merges) as integers, scores with four decimals."""
    return f"{value:11d}" if isinstance(value, int) else f"{value:11.4f}"


def score_columns(samples: list[Sample], instances: bool) -> tuple[str, ...]:
    """The DRIVE set when any image has a field of view, plus the object scores for instances."""
    columns = FOV_SCORES if any(s.fov is not None for s in samples) else SCORES
    return (*columns, *OBJECT_COLUMNS) if instances else columns


def evaluate_samples(
    predictor: Predictor,
    samples: list[Sample],
    cfg: RunConfig | None = None,
    on_image: Callable[[Sample, np.ndarray], None] | None = None,
    instances: InstanceOptions | None = None,
) -> Evaluation:
    """Predict each sample at full size and score it (inside its FOV, if it has one).

    With ``instances`` the prediction is split into objects and scored with SEG and
    the matching scores against the reference objects (the mask's labels or its
    connected components).
    """
    cfg = cfg or predictor.cfg
    classes = scored_classes(predictor.cfg.model.num_classes, predictor.cfg.data.target)
    result = Evaluation(columns=score_columns(samples, instances is not None))
    for sample in progress(samples, desc="evaluate", unit="image"):
        probs = predictor.predict(sample.image, sample.path or sample.name)
        pred = to_mask(probs, predictor.threshold, predictor.cfg.data.target)
        truth = truth_labels(sample.mask, classes, cfg.data.mask_threshold, sample.path)
        foreground = foreground_probability(probs, predictor.cfg.data.target)
        histogram = ProbabilityHistogram.of(foreground, truth > 0, sample.fov)
        objects = None
        if instances is not None:
            reference = reference_instances(sample.mask, cfg.data.mask_threshold)
            cells = label_cells(probs, predictor.cfg, predictor.threshold, instances)
            objects = object_scores(reference, cells)
        result.add(
            sample.name, image_confusion(pred, truth, classes, sample.fov), histogram, objects
        )
        if on_image is not None:
            on_image(sample, probs)
    return result
