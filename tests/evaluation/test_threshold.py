"""``--threshold auto`` chooses on all validation images but reports a cross-fitted score."""

from __future__ import annotations

import numpy as np
import pytest

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.threshold import cross_fit_threshold
from unet_tf.inference.predictor import Predictor


def two_level(name: str, fg: float, bg: float) -> Sample:
    """A 16x16 image whose values are the network's probabilities: left half foreground."""
    image = np.full((16, 16, 1), bg, np.float32)
    image[:, :8] = fg
    mask = np.zeros((16, 16), np.uint8)
    mask[:, :8] = 255
    return Sample(name, image, mask)


def test_cross_fitting_scores_each_half_at_the_other_halfs_threshold():
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.data.patch = 1, 2, 16
    cfg.train.threshold = "auto"
    predictor = Predictor(lambda batch: batch, cfg)  # the "network" returns the image
    # Image a separates at any t in [0.02, 0.3): the lowest, 0.05, is chosen on it;
    # image b only at t in [0.505, 0.9): 0.51 is chosen on it.
    val = [two_level("a", fg=0.3, bg=0.02), two_level("b", fg=0.9, bg=0.505)]
    choice = cross_fit_threshold(predictor, val, cfg)
    assert choice.half_thresholds == pytest.approx((0.05, 0.51))
    # On all images: t = 0.05 gives pooled Dice 2*256 / (2*256 + 128) = 0.8, t = 0.51 0.667.
    assert choice.threshold == pytest.approx(0.05)
    # Scoring at 0.05 on the same images would report a mean Dice of (1 + 2/3) / 2.
    # Cross-fitted: a at 0.51 finds nothing (0), b at 0.05 is all foreground (2/3).
    crossed = choice.cross_fitted.mean()["dice"]
    assert crossed == pytest.approx((0 + 2 / 3) / 2)
    assert [row["name"] for row in choice.cross_fitted.images] == ["a", "b"]
    # At 0.5: a finds nothing, b is all foreground.
    assert choice.at_half.mean()["dice"] == pytest.approx(1 / 3)


def test_one_validation_image_cannot_be_cross_fitted():
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.data.patch = 1, 2, 16
    choice = cross_fit_threshold(Predictor(lambda b: b, cfg), [two_level("a", 0.3, 0.02)], cfg)
    assert choice.cross_fitted is None and choice.threshold == pytest.approx(0.05)
