"""experiments/dsb_resplit.py: its second split cuts necks, keeps convex cells and labels."""

from __future__ import annotations

import importlib.util

import numpy as np
from conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "dsb_resplit", ROOT / "experiments" / "dsb_resplit.py"
)
dsb_resplit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dsb_resplit)


def discs(*centres: int, radius: int = 10) -> np.ndarray:
    yy, xx = np.mgrid[:40, :120]
    return np.any([(yy - 20) ** 2 + (xx - x) ** 2 < radius**2 for x in centres], axis=0)


def test_a_dumbbell_is_cut_at_its_neck_and_a_lone_disc_is_kept():
    # one object of two overlapping discs (16 px apart, radius 10), and a separate disc
    labels = discs(18, 34).astype(np.int32) + 2 * discs(90)
    assert dsb_resplit.split_at_necks(labels, None) is labels
    split = dsb_resplit.split_at_necks(labels, 2.0)
    assert sorted(np.unique(split)) == [0, 1, 2, 3]
    left, right = split[20, 14], split[20, 38]  # inside each disc, away from the neck
    assert left != right and 0 not in (left, right)
    assert len(np.unique(split[discs(90)])) == 1  # the convex disc stays whole
    np.testing.assert_array_equal(split > 0, labels > 0)  # no pixel gained or lost
