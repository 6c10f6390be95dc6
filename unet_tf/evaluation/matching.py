"""Object scores: reference and predicted cells paired one to one by their overlap.

Biologists count and measure cells, so tools are compared by how many cells they get
right, not by pixels. The definitions follow StarDist's ``stardist.matching`` (Schmidt
et al. 2018), whose numbers the tests reproduce:

- The IoU |R ∩ P| / |R ∪ P| of every reference object R and predicted object P.
- At a threshold t, the pairs are chosen by an optimal one-to-one assignment
  (``scipy.optimize.linear_sum_assignment``) that first maximises the number of pairs
  with IoU >= t and then their summed IoU; those pairs are the true positives (TP),
  unmatched predictions are false positives (FP), unmatched reference objects false
  negatives (FN). Above t = 0.5 the pairs are unique anyway (an object cannot overlap
  two others by more than half its union), so the assignment only matters below it.
- Precision TP / (TP + FP), recall TP / (TP + FN), F1 2TP / (2TP + FP + FN), and the
  2018 Data Science Bowl's "accuracy" TP / (TP + FP + FN), reported as AP; its mean over
  t = 0.5, 0.55, ..., 0.95 is the DSB 2018 score. (Kaggle counted IoU > t, StarDist and
  this module IoU >= t; they differ only for an IoU exactly on a threshold.)
- Panoptic quality (Kirillov et al., CVPR 2019) PQ = SQ x RQ: SQ is the mean IoU of the
  matched pairs, RQ = TP / (TP + FP/2 + FN/2) (which equals F1).

A ratio whose denominator is 0 is 0, as in StarDist (no predictions: precision 0),
except when an image has neither reference nor predicted objects: then there is
nothing to score and every ratio is NaN, so the image carries no weight in a mean.

Over a dataset the counts are pooled (summed TP, FP, FN and matched IoU at each
threshold, as ``stardist.matching.matching_dataset`` does), not the per-image scores
averaged, so an image with 300 nuclei weighs more than one with 3.

Splits and merges are counted by containment, which needs no threshold: a predicted
object lies *in* a reference cell when at least half of its own pixels do (and the
other way round). A reference cell is **split** when two or more predicted objects lie
in it; a predicted object is a **merge** when two or more reference cells lie in it.
A speck predicted next to a correctly found cell therefore counts as a split, as it
would when a biologist counts the cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.segmentation import relabel_sequential

# The DSB 2018 thresholds: 0.5, 0.55, ..., 0.95.
THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def _ratio(numerator: float, denominator: float) -> float:
    """StarDist's safe division: 0 when there is nothing to divide by."""
    return float(numerator / denominator) if denominator > 0 else 0.0


@dataclass(frozen=True)
class Matches:
    """Object counts of one image, or pooled over several, at each IoU threshold.

    ``tp[i]`` and ``matched_iou[i]`` (the summed IoU of the TP pairs) belong to
    ``thresholds[i]``; FP and FN follow from the object counts. Adding two
    ``Matches`` pools their counts.
    """

    thresholds: tuple[float, ...] = THRESHOLDS
    reference: int = 0
    predicted: int = 0
    tp: np.ndarray = field(default_factory=lambda: np.zeros(len(THRESHOLDS), np.int64))
    matched_iou: np.ndarray = field(default_factory=lambda: np.zeros(len(THRESHOLDS)))
    splits: int = 0
    merges: int = 0

    def __add__(self, other: Matches) -> Matches:
        if self.thresholds != other.thresholds:
            raise ValueError(f"cannot pool thresholds {self.thresholds} and {other.thresholds}")
        return Matches(
            self.thresholds,
            self.reference + other.reference,
            self.predicted + other.predicted,
            self.tp + other.tp,
            self.matched_iou + other.matched_iou,
            self.splits + other.splits,
            self.merges + other.merges,
        )

    @property
    def empty(self) -> bool:
        """Neither reference nor predicted objects: no object score is defined."""
        return self.reference == 0 and self.predicted == 0

    def at(self, threshold: float) -> dict[str, float]:
        """Every score at one of ``thresholds``: counts, ratios, mean matched IoU, PQ."""
        i = self.thresholds.index(threshold)
        tp = int(self.tp[i])
        fp, fn = self.predicted - tp, self.reference - tp
        counts = {"thresh": threshold, "tp": tp, "fp": fp, "fn": fn}
        if self.empty:
            names = ("precision", "recall", "f1", "accuracy", "mean_matched_iou", "sq", "rq", "pq")
            return {**counts, **dict.fromkeys(names, float("nan"))}
        iou_sum = float(self.matched_iou[i])
        sq = _ratio(iou_sum, tp)
        rq = _ratio(tp, tp + fp / 2 + fn / 2)
        return {
            **counts,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "accuracy": _ratio(tp, tp + fp + fn),
            "mean_matched_iou": sq,
            "sq": sq,
            "rq": rq,
            "pq": _ratio(iou_sum, tp + fp / 2 + fn / 2),
        }

    def per_threshold(self) -> list[dict[str, float]]:
        return [self.at(t) for t in self.thresholds]

    def scores(self) -> dict[str, float]:
        """The headline scores: AP and F1 at 0.5, mean AP (the DSB score), PQ, splits, merges.

        Needs 0.5 among ``thresholds``; the mean AP is over all of them.
        """
        half = self.at(0.5)
        mean_ap = float(np.mean([self.at(t)["accuracy"] for t in self.thresholds]))
        return {
            "ap50": half["accuracy"],
            "map": mean_ap,
            "f1_50": half["f1"],
            "pq": half["pq"],
            "splits": self.splits,
            "merges": self.merges,
        }


def overlaps(reference: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Pixel counts of every (reference, predicted) label pair; row and column 0 = background.

    Labels are renumbered 1..N first, so sparse label values (CTC silver truth uses
    numbers in the thousands) cost no memory.
    """
    reference = np.asarray(reference)
    predicted = np.asarray(predicted)
    if reference.shape != predicted.shape:
        raise ValueError(f"reference {reference.shape} and prediction {predicted.shape} differ")
    ref, pred = sequential(reference), sequential(predicted)
    n_ref, n_pred = int(ref.max(initial=0)) + 1, int(pred.max(initial=0)) + 1
    pairs = np.bincount((ref * n_pred + pred).ravel(), minlength=n_ref * n_pred)
    return pairs.reshape(n_ref, n_pred)


def sequential(labels: np.ndarray) -> np.ndarray:
    """``labels`` as int64 numbered 1..N in the same order (0 stays background).

    Counted with ``bincount`` rather than sorted (``relabel_sequential``): choosing a
    watershed setting scores every image dozens of times, and sorting the pixels was
    most of that time. Labels far sparser than the pixels (values in the billions)
    still take the sorting way, which needs no table as long as the largest value.
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if labels.size == 0 or labels.min() < 0 or labels.max() > 4 * labels.size:
        return relabel_sequential(labels)[0].astype(np.int64, copy=False)
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    if present[1:].all():
        return labels
    table = np.zeros(len(present), np.int64)
    table[present] = np.arange(1, np.count_nonzero(present) + 1)
    return table[labels]


def match_objects(
    reference: np.ndarray, predicted: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS
) -> Matches:
    """Match the objects of two (H, W) label images (0 = background) at each threshold."""
    return matches_of(overlaps(reference, predicted), thresholds)


def matches_of(overlap: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> Matches:
    """:func:`match_objects` from the :func:`overlaps` table of the two label images."""
    ref_sizes = overlap.sum(axis=1, keepdims=True)
    pred_sizes = overlap.sum(axis=0, keepdims=True)
    inter = overlap[1:, 1:].astype(np.float64)
    union = ref_sizes[1:] + pred_sizes[:, 1:] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    n_ref, n_pred = iou.shape
    tp = np.zeros(len(thresholds), np.int64)
    matched_iou = np.zeros(len(thresholds))
    pairs = min(n_ref, n_pred)
    for i, t in enumerate(thresholds):
        if pairs == 0:
            break
        # Most pairs at or above t first; IoU (< 1 per pair, so < 1 in total) breaks ties.
        rows, cols = linear_sum_assignment(-(iou >= t).astype(float) - iou / (2 * pairs))
        kept = iou[rows, cols][iou[rows, cols] >= t]
        tp[i], matched_iou[i] = len(kept), kept.sum()
    # Containment: at least half of a predicted (reference) object's pixels in a cell.
    pred_in_ref = 2 * inter >= pred_sizes[:, 1:]
    ref_in_pred = 2 * inter >= ref_sizes[1:]
    return Matches(
        tuple(thresholds),
        n_ref,
        n_pred,
        tp,
        matched_iou,
        splits=int(np.count_nonzero(pred_in_ref.sum(axis=1) >= 2)),
        merges=int(np.count_nonzero(ref_in_pred.sum(axis=0) >= 2)),
    )
