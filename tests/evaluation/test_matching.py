"""Object matching scores, by hand and against StarDist's ``matching`` on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import shared_path

from unet_tf.evaluation.matching import THRESHOLDS, Matches, match_objects, overlaps, sequential

FIELDS = ("tp", "fp", "fn", "precision", "recall", "f1", "accuracy", "mean_matched_iou", "pq")


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def touching_discs() -> tuple[np.ndarray, np.ndarray]:
    """Three reference discs, two of them touching; the prediction shifts and shrinks them."""
    ref = np.zeros((64, 64), np.uint16)
    ref[disc(ref.shape, 20, 20, 10)] = 1
    ref[disc(ref.shape, 20, 40, 10) & (ref == 0)] = 2  # touches disc 1
    ref[disc(ref.shape, 48, 30, 8)] = 3
    pred = np.zeros_like(ref)
    pred[disc(ref.shape, 21, 21, 10)] = 5  # shifted by one pixel each way
    pred[disc(ref.shape, 20, 40, 7) & (pred == 0)] = 9  # too small
    pred[disc(ref.shape, 52, 30, 8)] = 11  # shifted by half its radius
    return ref, pred


def split_cell() -> tuple[np.ndarray, np.ndarray]:
    """One disc predicted as two pieces (the left 55% and the rest), plus a correct disc."""
    ref = np.zeros((48, 48), np.uint16)
    ref[disc(ref.shape, 16, 16, 10)] = 1
    ref[disc(ref.shape, 36, 36, 8)] = 2
    pred = ref.copy()
    pred[(ref == 1) & (np.arange(48)[None, :] > 16)] = 7
    return ref, pred


def merged_cells() -> tuple[np.ndarray, np.ndarray]:
    """Two touching discs predicted as one object, and a third missed."""
    ref = np.zeros((48, 64), np.uint16)
    ref[disc(ref.shape, 20, 18, 9)] = 1
    ref[disc(ref.shape, 20, 36, 9) & (ref == 0)] = 2
    ref[disc(ref.shape, 40, 55, 5)] = 3
    pred = np.where((ref == 1) | (ref == 2), 4, 0).astype(np.uint16)
    return ref, pred


def empty_prediction() -> tuple[np.ndarray, np.ndarray]:
    ref, _ = touching_discs()
    return ref, np.zeros_like(ref)


def erode_labels(labels: np.ndarray) -> np.ndarray:
    """Each label keeps the pixels whose four neighbours carry the same label (image edge: 0)."""
    padded = np.pad(labels, 1)
    core = padded[1:-1, 1:-1]
    keep = (core == padded[:-2, 1:-1]) & (core == padded[2:, 1:-1])
    keep &= (core == padded[1:-1, :-2]) & (core == padded[1:-1, 2:])
    return np.where(keep, labels, 0).astype(labels.dtype)


def perturbed_nuclei(truth: np.ndarray) -> np.ndarray:
    """The DSB nuclei eroded by 1 px, three touching pairs merged, two split, three dropped."""
    pred = erode_labels(truth)
    for keep, gone in ((13, 62), (22, 73), (39, 101)):  # pairs that touch in mask2d.tif
        pred[pred == gone] = keep
    new = int(truth.max()) + 1
    for cell in (6, 7):  # cut at the cell's median column
        ys, xs = np.nonzero(pred == cell)
        right = xs > np.median(xs)
        pred[ys[right], xs[right]] = new
        new += 1
    for cell in (10, 14, 16):
        pred[pred == cell] = 0
    pred[0:6, 0:6] = new  # a false positive on background
    return pred


def real_pair() -> tuple[np.ndarray, np.ndarray]:
    truth = tifffile.imread(shared_path("data", "dsb-nuclei", "mask2d.tif"))
    assert not truth[0:6, 0:6].any()
    return truth, perturbed_nuclei(truth)


# StarDist 0.9.2 (csbdeep 0.8.2): stardist.matching.matching(y_true, y_pred, thresh=THRESHOLDS)
# on exactly the inputs above, and matching_dataset over the four synthetic pairs plus the
# real one. One row per threshold 0.5, 0.55, ..., 0.95, in the order of FIELDS (StarDist's
# mean_matched_score is mean_matched_iou here, its panoptic_quality pq).
STARDIST: dict[str, list[tuple]] = {
    "touching_discs": [
        (2, 1, 1, 0.6666666667, 0.6666666667, 0.6666666667, 0.5, 0.6768027544, 0.4512018363),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (1, 2, 2, 0.3333333333, 0.3333333333, 0.3333333333, 0.2, 0.8323699236, 0.2774566412),
        (0, 3, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 3, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 3, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
    "split_cell": [
        (2, 1, 0, 0.6666666667, 1.0, 0.8, 0.6666666667, 0.7665615082, 0.6132492065),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
        (1, 2, 1, 0.3333333333, 0.5, 0.4, 0.25, 1.0, 0.4),
    ],
    "merged_cells": [
        (1, 0, 2, 1.0, 0.3333333333, 0.5, 0.3333333333, 0.5009900928, 0.2504950464),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 1, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
    "empty_prediction": [
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 0, 3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
    "real": [
        (111, 10, 14, 0.9173553719, 0.888, 0.9024390244, 0.8222222222, 0.8230588071, 0.7427603869),
        (110, 11, 15, 0.9090909091, 0.88, 0.8943089431, 0.8088235294, 0.8255824696, 0.7383257858),
        (110, 11, 15, 0.9090909091, 0.88, 0.8943089431, 0.8088235294, 0.8255824696, 0.7383257858),
        (109, 12, 16, 0.9008264463, 0.872, 0.8861788618, 0.795620438, 0.8274361847, 0.7332564563),
        (103, 18, 22, 0.8512396694, 0.824, 0.837398374, 0.7202797203, 0.8361580117, 0.7001973594),
        (101, 20, 24, 0.8347107438, 0.808, 0.8211382114, 0.6965517241, 0.8382398398, 0.6883107627),
        (90, 31, 35, 0.7438016529, 0.72, 0.7317073171, 0.5769230769, 0.8459230211, 0.6189680642),
        (42, 79, 83, 0.347107438, 0.336, 0.3414634146, 0.2058823529, 0.8618148622, 0.2942782456),
        (0, 121, 125, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (0, 121, 125, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ],
    "dataset": [
        (
            116,
            12,
            20,
            0.90625,
            0.8529411765,
            0.8787878788,
            0.7837837838,
            0.8167866016,
            0.7177821651,
        ),
        (112, 16, 24, 0.875, 0.8235294118, 0.8484848485, 0.7368421053, 0.8272003446, 0.7018669591),
        (112, 16, 24, 0.875, 0.8235294118, 0.8484848485, 0.7368421053, 0.8272003446, 0.7018669591),
        (
            111,
            17,
            25,
            0.8671875,
            0.8161764706,
            0.8409090909,
            0.7254901961,
            0.8290352349,
            0.6971432657,
        ),
        (
            105,
            23,
            31,
            0.8203125,
            0.7720588235,
            0.7954545455,
            0.6603773585,
            0.8376823062,
            0.6663381981,
        ),
        (
            103,
            25,
            33,
            0.8046875,
            0.7573529412,
            0.7803030303,
            0.6397515528,
            0.8397533083,
            0.6552620512,
        ),
        (92, 36, 44, 0.71875, 0.6764705882, 0.696969697, 0.5348837209, 0.8474504222, 0.590647264),
        (
            43,
            85,
            93,
            0.3359375,
            0.3161764706,
            0.3257575758,
            0.1945701357,
            0.8650284701,
            0.2817895774,
        ),
        (1, 127, 135, 0.0078125, 0.0073529412, 0.0075757576, 0.0038022814, 1.0, 0.0075757576),
        (1, 127, 135, 0.0078125, 0.0073529412, 0.0075757576, 0.0038022814, 1.0, 0.0075757576),
    ],
}


def assert_matches_stardist(ours: Matches, expected: list[tuple]) -> None:
    for t, row in zip(THRESHOLDS, expected, strict=True):
        got = ours.at(t)
        for name, value in zip(FIELDS, row, strict=True):
            assert got[name] == pytest.approx(value, abs=1e-6), (t, name)


def test_hand_computed_shift_miss_and_false_positive():
    """Reference: two 10x10 squares. Prediction: the first shifted down by 2 rows, the
    second missed, and a 5x5 false positive.

    The shifted square overlaps 8 of 10 rows: IoU = 80 / (100 + 100 - 80) = 2/3, so it
    is a TP at t = 0.5 ... 0.65 and not from 0.7. At 0.5: TP 1, FP 1, FN 1: precision =
    recall = F1 = 1/2, DSB accuracy 1/(1+1+1) = 1/3, SQ = 2/3, RQ = 1/(1 + 1/2 + 1/2) =
    1/2, PQ = 1/3. Mean AP = (4 x 1/3 + 6 x 0) / 10 = 2/15.
    """
    ref = np.zeros((40, 40), np.int32)
    ref[0:10, 0:10], ref[20:30, 20:30] = 1, 2
    pred = np.zeros_like(ref)
    pred[2:12, 0:10], pred[30:35, 0:5] = 4, 8
    result = match_objects(ref, pred)
    assert list(result.tp) == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    half = result.at(0.5)
    assert (half["tp"], half["fp"], half["fn"]) == (1, 1, 1)
    assert half["precision"] == half["recall"] == half["f1"] == pytest.approx(1 / 2)
    assert half["accuracy"] == pytest.approx(1 / 3)
    assert half["sq"] == pytest.approx(2 / 3) and half["rq"] == pytest.approx(1 / 2)
    assert half["pq"] == pytest.approx(1 / 3)
    assert result.at(0.7)["pq"] == 0.0 and result.at(0.7)["fn"] == 2
    scores = result.scores()
    assert scores["ap50"] == pytest.approx(1 / 3) and scores["map"] == pytest.approx(2 / 15)
    assert scores["f1_50"] == pytest.approx(1 / 2) and scores["pq"] == pytest.approx(1 / 3)
    assert scores["splits"] == scores["merges"] == 0


def test_splits_and_merges_are_counted_by_containment():
    """Split: both pieces lie in reference cell 1; merge: both cells lie in object 4."""
    split = match_objects(*split_cell())
    assert (split.splits, split.merges) == (1, 0)
    merge = match_objects(*merged_cells())
    assert (merge.splits, merge.merges) == (0, 1)
    # A piece with less than half of its pixels in the cell is not a fragment of it.
    ref = np.zeros((10, 20), np.int32)
    ref[:, :10] = 1
    pred = np.zeros_like(ref)
    pred[:, :8], pred[:, 8:14] = 1, 2  # piece 2: 12 of 36 px inside
    assert match_objects(ref, pred).splits == 0
    pred[:, 11:14] = 0  # piece 2 is now columns 8-10: 20 of its 30 px inside
    assert match_objects(ref, pred).splits == 1


def test_empty_images_have_no_scores_and_empty_predictions_score_zero():
    nothing = match_objects(np.zeros((8, 8), int), np.zeros((8, 8), int))
    assert nothing.empty and all(np.isnan(nothing.at(0.5)[k]) for k in FIELDS[3:])
    assert np.isnan(nothing.scores()["map"]) and nothing.at(0.5)["tp"] == 0
    missed = match_objects(*empty_prediction())
    assert missed.at(0.5)["fn"] == 3 and missed.scores()["map"] == 0.0
    pooled = nothing + missed
    assert pooled.reference == 3 and pooled.scores()["ap50"] == 0.0


def test_labels_are_renumbered_and_shapes_must_agree():
    ref = np.zeros((8, 8), np.uint16)
    ref[0:4, 0:4], ref[4:8, 4:8] = 60000, 3
    assert overlaps(ref, ref).shape == (3, 3)
    assert match_objects(ref, ref.astype(np.int32) * 2).scores()["map"] == 1.0
    with pytest.raises(ValueError, match="differ"):
        match_objects(ref, ref[:4])
    with pytest.raises(ValueError, match="pool"):
        _ = Matches() + Matches(thresholds=(0.5,), tp=np.zeros(1), matched_iou=np.zeros(1))


def test_sequential_keeps_the_order_of_sparse_labels_and_leaves_dense_ones_alone():
    labels = np.array([[0, 7, 7], [3000, 0, 3]], np.uint16)
    np.testing.assert_array_equal(sequential(labels), [[0, 2, 2], [3, 0, 1]])
    dense = np.array([[1, 2], [3, 3]], np.int64)
    assert sequential(dense) is dense  # already 1..N (without background): not copied
    huge = np.array([[0, 2**40], [5, 5]], np.int64)  # no table as long as 2**40
    np.testing.assert_array_equal(sequential(huge), [[0, 2], [1, 1]])
    assert sequential(np.zeros((2, 2), np.uint8)).max() == 0


@pytest.mark.parametrize(
    "case", ["touching_discs", "split_cell", "merged_cells", "empty_prediction"]
)
def test_synthetic_cases_equal_stardist(case):
    ref, pred = globals()[case]()
    assert_matches_stardist(match_objects(ref, pred), STARDIST[case])


def test_perturbed_dsb_nuclei_equal_stardist():
    truth, pred = real_pair()
    result = match_objects(truth, pred)
    assert (result.reference, result.splits, result.merges) == (125, 2, 3)
    assert_matches_stardist(result, STARDIST["real"])


def test_pooled_counts_equal_stardist_matching_dataset():
    pairs = [globals()[c]() for c in ("touching_discs", "split_cell", "merged_cells")]
    pairs += [empty_prediction(), real_pair()]
    pooled = sum((match_objects(r, p) for r, p in pairs), Matches())
    assert_matches_stardist(pooled, STARDIST["dataset"])
