"""The CTC SEG measure and instance post-processing on hand-built label images."""

from __future__ import annotations

import numpy as np
import pytest

from unet_tf.evaluation.objects import SegResult, reference_instances, seg_measure
from unet_tf.inference.postprocess import InstanceOptions, label_instances


def canvas() -> np.ndarray:
    return np.zeros((40, 40), np.int32)


def two_cells() -> np.ndarray:
    """Two 10x10 reference cells (100 px each), labelled 3 and 7."""
    ref = canvas()
    ref[5:15, 5:15] = 3
    ref[20:30, 20:30] = 7
    return ref


def test_perfect_match_scores_one_whatever_the_label_values():
    ref = two_cells()
    pred = np.where(ref == 3, 1, np.where(ref == 7, 2, 0))
    result = seg_measure(ref, pred)
    assert result.score == 1.0 and result.reference == 2 and result.matched == 2


def test_split_keeps_the_larger_part_only_if_it_holds_more_than_half():
    ref = canvas()
    ref[0:10, 0:10] = 1
    pred = canvas()
    pred[0:10, 0:6] = 1  # 60 px
    pred[0:10, 6:10] = 2  # 40 px
    assert seg_measure(ref, pred).score == pytest.approx(60 / 100)
    pred[0:10, 0:5], pred[0:10, 5:10] = 1, 2  # 50 / 50: no part has more than half
    assert seg_measure(ref, pred).score == 0.0


def test_merge_matches_both_cells_at_a_lower_jaccard():
    ref = canvas()
    ref[0:10, 0:10] = 1
    ref[0:10, 10:20] = 2
    pred = canvas()
    pred[0:10, 0:20] = 5
    result = seg_measure(ref, pred)
    np.testing.assert_allclose(result.jaccards, [100 / 200, 100 / 200])
    assert result.score == pytest.approx(0.5) and result.predicted == 1


def test_missed_object_scores_zero():
    ref = two_cells()
    pred = (ref == 3).astype(np.int32)
    result = seg_measure(ref, pred)
    np.testing.assert_allclose(result.jaccards, [1.0, 0.0])
    assert result.score == pytest.approx(0.5) and result.matched == 1


def test_extra_object_does_not_lower_seg():
    ref = canvas()
    ref[5:15, 5:15] = 1
    pred = ref.copy()
    pred[30:35, 30:35] = 2
    result = seg_measure(ref, pred)
    assert result.score == 1.0 and result.predicted == 2 and result.reference == 1


def test_partial_overlap_scores_the_jaccard_index():
    ref = canvas()
    ref[0:10, 0:10] = 1
    pred = canvas()
    pred[2:12, 0:10] = 1  # 80 px inside R, 20 outside
    assert seg_measure(ref, pred).score == pytest.approx(80 / 120)


def test_overlap_of_exactly_half_is_no_match():
    ref = canvas()
    ref[0:10, 0:10] = 1
    pred = canvas()
    pred[5:15, 0:10] = 1
    assert seg_measure(ref, pred).score == 0.0


def test_no_reference_objects_give_nan_and_pooling_counts_objects():
    empty = seg_measure(canvas(), two_cells())
    assert np.isnan(empty.score) and empty.predicted == 2
    ref = two_cells()
    pooled = seg_measure(ref, ref) + seg_measure(ref, np.zeros_like(ref)) + empty
    assert pooled.reference == 4 and pooled.score == pytest.approx(0.5)
    assert SegResult().reference == 0


def test_reference_instances_keeps_label_images_and_splits_binary_masks():
    labels = two_cells().astype(np.uint16)
    np.testing.assert_array_equal(reference_instances(labels), labels)
    binary = ((labels > 0) * 255).astype(np.uint8)
    components = reference_instances(binary)
    assert components.max() == 2 and (components > 0).sum() == 200
    jpeg_like = (labels > 0).astype(np.uint8)
    jpeg_like[0, 0] = 2  # compression noise in an 8-bit mask is not a cell label
    assert reference_instances(jpeg_like).max() == 3


def test_instances_fill_holes_and_drop_small_objects():
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = True
    mask[8:11, 8:11] = False  # a hole
    mask[30:32, 30:32] = True  # a 4 px speck
    labels = label_instances(mask, InstanceOptions(min_size=5))
    assert labels.max() == 1 and (labels == 1).sum() == 100
    kept = label_instances(mask, InstanceOptions(min_size=0, fill_holes=False))
    assert kept.max() == 2 and (kept > 0).sum() == 100 - 9 + 4


def test_split_touching_separates_two_overlapping_disks_but_not_one_ellipse():
    yy, xx = np.mgrid[:60, :80]
    disks = ((xx - 25) ** 2 + (yy - 30) ** 2 <= 12**2) | ((xx - 48) ** 2 + (yy - 30) ** 2 <= 12**2)
    assert label_instances(disks).max() == 1
    split = label_instances(disks, InstanceOptions(split_touching=True))
    assert split.max() == 2
    sizes = np.bincount(split.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) < 0.05 * sizes.sum()
    ellipse = ((xx - 40) / 30.0) ** 2 + ((yy - 30) / 10.0) ** 2 <= 1
    assert label_instances(ellipse, InstanceOptions(split_touching=True)).max() == 1
