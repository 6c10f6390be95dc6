"""The Cell Tracking Challenge SEG measure, on labelled objects.

As the CTC defines it (Maška et al. 2014; Ulman et al. 2017): a reference object R
is matched by the predicted object S when |R ∩ S| > 0.5 |R|, so at most one S can
match it; R scores the Jaccard index |R ∩ S| / |R ∪ S| of its match, or 0 when
nothing matches; SEG is the mean over all reference objects. A merge of two cells
can still match both (each lies mostly inside it) but at a lower Jaccard; a split
leaves the larger half as the match or, if no part has more than half, nothing.
Predicted objects with no reference (false positives) do not lower SEG; the counts
reported next to it show them, and so do the matching scores of
:mod:`unet_tf.evaluation.matching` (AP, F1, PQ, splits, merges), which
:class:`ObjectScores` puts next to SEG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.measure import label

from unet_tf.evaluation.matching import Matches, matches_of, overlaps

# The per-image object columns of ``evaluate --instances``, after the pixel scores.
OBJECT_COLUMNS = ("seg", "ap50", "map", "f1_50", "pq", "splits", "merges")


@dataclass
class SegResult:
    """Per-reference-object Jaccard scores of one image (or pooled over many)."""

    jaccards: np.ndarray = field(default_factory=lambda: np.zeros(0))
    predicted: int = 0  # objects in the prediction

    @property
    def reference(self) -> int:
        return len(self.jaccards)

    @property
    def matched(self) -> int:
        return int(np.count_nonzero(self.jaccards))

    @property
    def score(self) -> float:
        """SEG; NaN for an image with no reference objects (it then carries no weight)."""
        return float(self.jaccards.mean()) if len(self.jaccards) else float("nan")

    def __add__(self, other: SegResult) -> SegResult:
        return SegResult(
            np.concatenate([self.jaccards, other.jaccards]), self.predicted + other.predicted
        )


def seg_measure(reference: np.ndarray, predicted: np.ndarray) -> SegResult:
    """CTC SEG of two (H, W) label images (0 = background)."""
    return seg_of(overlaps(reference, predicted))


def seg_of(overlap: np.ndarray) -> SegResult:
    """SEG from the :func:`overlaps` table of two label images (row and column 0 background).

    A reference object's match is its largest overlap if that holds more than half of
    it; more than half cannot be shared, so no tie can decide a match.
    """
    ref_sizes, pred_sizes = overlap.sum(axis=1), overlap.sum(axis=0)
    objects = overlap[1:, 1:]
    if objects.shape[0] == 0:
        return SegResult(np.zeros(0), objects.shape[1])
    if objects.shape[1] == 0:
        return SegResult(np.zeros(objects.shape[0]), 0)
    best = objects.argmax(axis=1)
    n = objects[np.arange(len(best)), best].astype(np.float64)
    union = ref_sizes[1:] + pred_sizes[1:][best] - n
    jaccards = np.where(2 * n > ref_sizes[1:], n / np.maximum(union, 1), 0.0)
    return SegResult(jaccards, objects.shape[1])


@dataclass
class ObjectScores:
    """SEG and the matching scores of one image, or pooled over many by adding."""

    seg: SegResult = field(default_factory=SegResult)
    matches: Matches = field(default_factory=Matches)

    def __add__(self, other: ObjectScores) -> ObjectScores:
        return ObjectScores(self.seg + other.seg, self.matches + other.matches)

    def scores(self) -> dict[str, float]:
        """The values of ``OBJECT_COLUMNS``."""
        return {"seg": self.seg.score, **self.matches.scores()}

    def counts(self) -> dict[str, int]:
        """Objects on each side, SEG's matches, and TP / FP / FN at IoU 0.5."""
        half = self.matches.at(0.5)
        return {
            "reference": self.seg.reference,
            "predicted": self.seg.predicted,
            "matched": self.seg.matched,
            **{k: half[k] for k in ("tp", "fp", "fn")},
        }


def object_scores(reference: np.ndarray, predicted: np.ndarray) -> ObjectScores:
    """SEG and the matching scores of two (H, W) label images (0 = background)."""
    overlap = overlaps(reference, predicted)  # both measures read the one table
    return ObjectScores(seg_of(overlap), matches_of(overlap))


def reference_instances(mask: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Objects of a ground-truth mask: its own labels, or connected components.

    Masks stored with more than 8 bits and more than two values (CTC ``man_seg``,
    the DSB's label TIFFs) already hold one label per cell. Anything else (binary
    PNGs, JPEG masks with compression noise) is binarised at ``threshold`` and split
    into 4-connected components.
    """
    mask = np.asarray(mask)
    wide = np.issubdtype(mask.dtype, np.integer) and mask.dtype.itemsize > 1
    if wide and len(np.unique(mask)) > 2:
        return mask.astype(np.int64)
    return label(mask > threshold, connectivity=1)
