"""Scoring predictions against ground truth at each image's full original size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.pipeline import make_target
from unet_tf.data.sample import Sample
from unet_tf.inference import Predictor, to_mask
from unet_tf.metrics import SCORES, Confusion, confusion


def image_confusion(pred: np.ndarray, truth: np.ndarray, classes: int, fov=None) -> Confusion:
    """Pixel counts for one image; multi-class sums the foreground classes (micro)."""
    if classes == 1:
        return confusion(pred > 0, truth > 0, fov)
    total = Confusion()
    for c in range(1, classes):
        total = total + confusion(pred == c, truth == c, fov)
    return total


@dataclass
class Evaluation:
    """Per-image scores, their mean, and dataset-wide scores from summed pixel counts."""

    images: list[dict] = field(default_factory=list)
    total: Confusion = field(default_factory=Confusion)

    def add(self, name: str, counts: Confusion) -> None:
        self.images.append({"name": name, **counts.scores()})
        self.total = self.total + counts

    def mean(self) -> dict[str, float]:
        return {k: float(np.mean([im[k] for im in self.images])) for k in SCORES}

    def std(self) -> dict[str, float]:
        return {k: float(np.std([im[k] for im in self.images])) for k in SCORES}

    def summary(self) -> dict:
        return {"mean": self.mean(), "std": self.std(), "dataset": self.total.scores()}

    def to_json(self) -> dict:
        return {**self.summary(), "images": self.images}

    def table(self) -> str:
        """A fixed-width table: one row per image, then the mean and the dataset scores."""
        width = max([len(im["name"]) for im in self.images] + [7])
        head = f"{'image':<{width}}  " + "  ".join(f"{k:>9}" for k in SCORES)
        rows = [head, "-" * len(head)]
        for im in self.images:
            rows.append(f"{im['name']:<{width}}  " + "  ".join(f"{im[k]:9.4f}" for k in SCORES))
        rows.append("-" * len(head))
        mean, std = self.mean(), self.std()
        rows.append(f"{'mean':<{width}}  " + "  ".join(f"{mean[k]:9.4f}" for k in SCORES))
        rows.append(f"{'std':<{width}}  " + "  ".join(f"{std[k]:9.4f}" for k in SCORES))
        total = self.total.scores()
        rows.append(f"{'dataset':<{width}}  " + "  ".join(f"{total[k]:9.4f}" for k in SCORES))
        return "\n".join(rows)


def evaluate_samples(
    predictor: Predictor,
    samples: list[Sample],
    cfg: RunConfig | None = None,
    on_image: Callable[[Sample, np.ndarray], None] | None = None,
) -> Evaluation:
    """Predict each sample at full size and score it (inside its FOV, if it has one)."""
    cfg = cfg or predictor.cfg
    classes = predictor.cfg.model.num_classes
    result = Evaluation()
    for sample in samples:
        probs = predictor.predict(sample.image, sample.path or sample.name)
        pred = to_mask(probs, predictor.threshold)
        truth = to_mask(
            make_target(sample.mask, classes, cfg.data.mask_threshold, sample.path), 0.5
        )
        result.add(sample.name, image_confusion(pred, truth, classes, sample.fov))
        if on_image is not None:
            on_image(sample, probs)
    return result
