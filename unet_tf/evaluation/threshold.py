"""``--threshold auto``: the Dice-optimal threshold on the validation set, scored honestly.

A model trained with a class-imbalanced or Dice-based loss is rarely calibrated, so
0.5 need not be its best cut. At the end of ``fit`` the validation images are
predicted at full size, the pooled Dice of ``p > t`` is computed for t = 0.05, 0.06,
..., 0.95 from the probability histograms, and the best t on all validation images is
written into the run's ``config.yaml`` (``train.threshold``), where ``predict`` and
``evaluate`` read it.

A threshold chosen on images and scored on the same images flatters itself. So the
score reported "at the chosen threshold" is *cross-fitted*: the validation images are
cut into two halves (first and second, in reading order, so neighbouring frames stay
together), a threshold is chosen on each half and the other half is scored at it; the
two scored halves together give the reported score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.data.targets import truth_labels
from unet_tf.evaluation.histograms import ProbabilityHistogram, foreground_probability
from unet_tf.evaluation.scoring import Evaluation, evaluate_samples
from unet_tf.inference.predictor import Predictor


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold to keep, and what the validation images say about it.

    ``at_half`` scores every validation image at 0.5; ``cross_fitted`` scores each half
    at the threshold chosen on the other half (None with fewer than two images);
    ``half_thresholds`` are those two thresholds (first half's choice first).
    """

    threshold: float
    at_half: Evaluation
    cross_fitted: Evaluation | None
    half_thresholds: tuple[float, float] | None


def cross_fit_threshold(predictor: Predictor, val: list[Sample], cfg: RunConfig) -> ThresholdChoice:
    """Choose the threshold on all of ``val``, and score a choice on images it did not see.

    ``predictor`` must apply the network at threshold 0.5 (its scores are ``at_half``).
    Each image is predicted once for the choice and once more for its cross-fitted score.
    """
    histograms: list[ProbabilityHistogram] = []

    def keep_histogram(sample: Sample, probs: np.ndarray) -> None:
        truth = truth_labels(sample.mask, 1, cfg.data.mask_threshold, sample.path) > 0
        histograms.append(ProbabilityHistogram.of(foreground_probability(probs), truth, sample.fov))

    at_half = evaluate_samples(predictor, val, cfg, on_image=keep_histogram)
    threshold = float(at_half.histogram.best_threshold()[0])
    if len(val) < 2:
        return ThresholdChoice(threshold, at_half, None, None)
    cut = len(val) // 2
    halves = ((val[:cut], histograms[:cut]), (val[cut:], histograms[cut:]))
    chosen = tuple(float(sum(h[1:], h[0]).best_threshold()[0]) for _, h in halves)
    scored = [
        evaluate_samples(at_threshold(predictor, t), samples, cfg)
        for (samples, _), t in zip(halves, reversed(chosen), strict=True)
    ]
    return ThresholdChoice(threshold, at_half, merge(*scored), (chosen[0], chosen[1]))


def at_threshold(predictor: Predictor, threshold: float) -> Predictor:
    """The same network and settings, cutting its probabilities at ``threshold``."""
    options = replace(predictor.options, threshold=threshold)
    return Predictor(predictor.network, predictor.cfg, options, predictor.history)


def merge(first: Evaluation, second: Evaluation) -> Evaluation:
    """One evaluation of the images of both, in order (their pooled counts added)."""
    objects = first.objects if second.objects is None else second.objects
    if first.objects is not None and second.objects is not None:
        objects = first.objects + second.objects
    return Evaluation(
        columns=first.columns,
        images=first.images + second.images,
        total=first.total + second.total,
        histogram=first.histogram + second.histogram,
        objects=objects,
    )
