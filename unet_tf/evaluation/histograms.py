"""How sure a model is: probability histograms, ROC AUC and the Dice-optimal threshold.

Every probability is counted in one of 65,536 bins (the 16-bit precision in which
``predict`` saves probability maps), separately for pixels that are foreground and
background in the ground truth. From these two histograms follow, in memory that
does not grow with the data: the ROC AUC (the Mann-Whitney statistic, exact up to
ties within a bin), Dice at any threshold, and the figure the second study used to
show that pretrained models are confident (near 0.9) where scratch ones hedge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unet_tf.inference.predictor import binary_mask

BINS = 65536
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)  # candidates for --threshold auto


def foreground_probability(probs: np.ndarray, target: str = "binary") -> np.ndarray:
    """(H, W): the sigmoid output (channel 0 of a ``distance`` target's), or
    1 - P(background) for a softmax over classes."""
    return probs[..., 0] if binary_mask(probs.shape[-1], target) else 1.0 - probs[..., 0]


@dataclass
class ProbabilityHistogram:
    """Counts of foreground-probability values for true foreground and true background."""

    foreground: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))
    background: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))

    @classmethod
    def of(cls, prob: np.ndarray, truth: np.ndarray, fov: np.ndarray | None = None):
        """The histogram of one (H, W) probability map against its (H, W) truth."""
        prob, truth = np.asarray(prob), np.asarray(truth, bool)
        if fov is not None:
            inside = np.asarray(fov, bool)
            prob, truth = prob[inside], truth[inside]
        bins = np.rint(np.clip(prob, 0.0, 1.0) * (BINS - 1)).astype(np.int64)
        return cls(
            np.bincount(bins[truth], minlength=BINS), np.bincount(bins[~truth], minlength=BINS)
        )

    def __add__(self, other: ProbabilityHistogram) -> ProbabilityHistogram:
        return ProbabilityHistogram(
            self.foreground + other.foreground, self.background + other.background
        )

    def auc(self) -> float:
        """ROC AUC: the chance that a foreground pixel outscores a background one."""
        pos, neg = self.foreground.sum(), self.background.sum()
        if pos == 0 or neg == 0:
            return float("nan")
        below = np.cumsum(self.background) - self.background  # negatives in lower bins
        wins = np.sum(self.foreground * (below + 0.5 * self.background))
        return float(wins / (pos * neg))

    def dice_at(self, thresholds: np.ndarray) -> np.ndarray:
        """Dice of ``p > t`` for each threshold (to the histogram's 1/65535 precision)."""
        cut = np.floor(np.asarray(thresholds) * (BINS - 1)).astype(np.int64) + 1
        fg_above = np.concatenate([np.cumsum(self.foreground[::-1])[::-1], [0]])
        bg_above = np.concatenate([np.cumsum(self.background[::-1])[::-1], [0]])
        tp, fp = fg_above[cut], bg_above[cut]
        fn = self.foreground.sum() - tp
        den = 2 * tp + fp + fn
        return np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)

    def best_threshold(self) -> tuple[float, float]:
        """The threshold in 0.05..0.95 with the highest Dice (the lowest one on ties)."""
        dice = self.dice_at(THRESHOLDS)
        best = int(np.argmax(dice))
        return float(THRESHOLDS[best]), float(dice[best])

    def coarse(self, bins: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(edges, foreground counts, background counts) in ``bins`` equal bins on [0, 1]."""
        index = np.minimum(np.arange(BINS) * bins // BINS, bins - 1)
        fg = np.bincount(index, weights=self.foreground, minlength=bins)
        bg = np.bincount(index, weights=self.background, minlength=bins)
        return np.linspace(0.0, 1.0, bins + 1), fg, bg

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean probability and the share of confident pixels, per true class."""
        values = np.arange(BINS) / (BINS - 1)
        out = {}
        for name, counts in (("foreground", self.foreground), ("background", self.background)):
            n = counts.sum()
            out[name] = {
                "pixels": int(n),
                "mean": float(values @ counts / n) if n else float("nan"),
                "above_0.9": float(counts[values > 0.9].sum() / n) if n else float("nan"),
                "below_0.1": float(counts[values < 0.1].sum() / n) if n else float("nan"),
            }
        return out

    def describe(self) -> str:
        """One line for the terminal."""
        s = self.summary()
        fg, bg = s["foreground"], s["background"]
        return (
            f"certainty: foreground pixels mean p {fg['mean']:.3f}, {fg['above_0.9']:.1%} above "
            f"0.9; background pixels mean p {bg['mean']:.3f}, {bg['below_0.1']:.1%} below 0.1"
        )
