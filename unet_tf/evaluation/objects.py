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

from unet_tf.evaluation.matching import Matches, match_objects

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
    reference = np.asarray(reference, np.int64)
    predicted = np.asarray(predicted, np.int64)
    if reference.shape != predicted.shape:
        raise ValueError(f"reference {reference.shape} and prediction {predicted.shape} differ")
    ref_ids = np.unique(reference[reference > 0])
    pred_count = len(np.unique(predicted[predicted > 0]))
    if len(ref_ids) == 0:
        return SegResult(np.zeros(0), pred_count)
    ref_sizes = np.bincount(reference.ravel())
    pred_sizes = np.bincount(predicted.ravel())
    both = (reference > 0) & (predicted > 0)
    pairs, overlap = np.unique(
        np.stack([reference[both], predicted[both]]), axis=1, return_counts=True
    )
    best = {}  # reference id -> (overlap, predicted id) of its largest overlap
    for (r, s), n in zip(pairs.T, overlap, strict=True):
        if n > best.get(r, (0, 0))[0]:
            best[r] = (n, s)
    jaccards = np.zeros(len(ref_ids))
    for i, r in enumerate(ref_ids):
        n, s = best.get(r, (0, 0))
        if 2 * n > ref_sizes[r]:
            jaccards[i] = n / (ref_sizes[r] + pred_sizes[s] - n)
    return SegResult(jaccards, pred_count)


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
    return ObjectScores(seg_measure(reference, predicted), match_objects(reference, predicted))


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
