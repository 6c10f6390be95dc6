"""The U-Net border weight map, checked against its formula on hand-built cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from unet_tf.config import RunConfig
from unet_tf.data.border_weights import (
    SIGMA,
    W0,
    add_border_weights,
    border_weights,
    cached_border_weights,
    class_balance,
    instance_labels,
    two_nearest_distances,
)
from unet_tf.data.pipeline import prepare
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError


def two_cells(gap: int = 2) -> np.ndarray:
    """Two 10x10 cells side by side, ``gap`` background columns apart, in a 20x30 image."""
    labels = np.zeros((20, 30), np.uint16)
    labels[5:15, 3:13] = 1
    labels[5:15, 13 + gap : 23 + gap] = 2
    return labels


def term(d1: float, d2: float) -> float:
    return W0 * math.exp(-((d1 + d2) ** 2) / (2 * SIGMA**2))


def test_class_balance_gives_each_class_half_the_weight():
    labels = two_cells()
    w = class_balance(labels > 0)
    n, n_fg = labels.size, int((labels > 0).sum())  # 600 pixels, 200 in cells
    assert w[10, 5] == pytest.approx(n / (2 * n_fg)) == pytest.approx(1.5)
    assert w[0, 0] == pytest.approx(n / (2 * (n - n_fg))) == pytest.approx(0.75)
    assert w[labels > 0].sum() == pytest.approx(w[labels == 0].sum())


def test_weights_match_the_formula_and_peak_between_touching_cells():
    labels = two_cells(gap=2)  # background columns 13 and 14 separate the cells
    w = border_weights(labels.astype(np.int64))
    w_bg, w_fg = 0.75, 1.5
    # Gap pixel (10, 13): 1 px from cell 1 (column 12), 2 px from cell 2 (column 15).
    assert w[10, 13] == pytest.approx(w_bg + term(1, 2), rel=1e-5)
    assert w[10, 14] == pytest.approx(w_bg + term(2, 1), rel=1e-5)
    # Left of cell 1 at (10, 1): d1 = 2, d2 = 14 to column 15.
    assert w[10, 1] == pytest.approx(w_bg + term(2, 14), rel=1e-4)
    # Above the gap at (2, 13): d1 = hypot(3, 1), d2 = hypot(3, 2).
    assert w[2, 13] == pytest.approx(w_bg + term(math.hypot(3, 1), math.hypot(3, 2)), rel=1e-5)
    # Cell interiors keep their class weight: the border term is for background only.
    assert w[10, 8] == pytest.approx(w_fg) and w[10, 12] == pytest.approx(w_fg)
    # The peak of the whole map lies in the gap between the cells.
    peak = np.unravel_index(np.argmax(w), w.shape)
    assert peak[1] in (13, 14) and 5 <= peak[0] < 15
    row = w[10]
    assert row[13] > 5 * row[1] and row[13] > 5 * row[27]


def test_a_single_cell_gets_no_border_term():
    labels = np.zeros((20, 20), np.int64)
    labels[5:10, 5:10] = 1
    w = border_weights(labels)
    np.testing.assert_allclose(np.unique(w), sorted({400 / (2 * 375), 400 / (2 * 25)}))


def test_two_nearest_distances_match_brute_force():
    rng = np.random.default_rng(3)
    labels = np.zeros((40, 40), np.int64)
    for k in range(1, 6):
        y, x = rng.integers(2, 34, 2)
        labels[y : y + 4, x : x + 4] = k
    d1, d2 = two_nearest_distances(labels, reach=100)
    per_cell = np.stack(
        [ndimage.distance_transform_edt(labels != k) for k in np.unique(labels[labels > 0])]
    )
    per_cell.sort(axis=0)
    np.testing.assert_allclose(d1, per_cell[0], rtol=1e-6)
    np.testing.assert_allclose(d2, per_cell[1], rtol=1e-6)


def test_binary_masks_use_4_connected_components():
    binary = (two_cells(gap=1) > 0).astype(np.uint8) * 255  # one background column apart
    labels = instance_labels(binary)
    assert labels.max() == 2
    np.testing.assert_allclose(
        border_weights(labels), border_weights(two_cells(gap=1).astype(np.int64))
    )


def test_instance_labels_separate_cells_that_touch():
    labels = two_cells(gap=0)  # no background between them
    assert instance_labels(labels).max() == 2  # uint16 labels kept
    assert instance_labels((labels > 0).astype(np.uint8)).max() == 1  # binary: one blob


def test_fov_restricts_the_class_balance():
    labels = two_cells()
    fov = np.zeros(labels.shape, bool)
    fov[:, :20] = True
    w = border_weights(labels.astype(np.int64), fov)
    inside_fg = int(((labels > 0) & fov).sum())
    assert w[10, 5] == pytest.approx(fov.sum() / (2 * inside_fg))


def test_maps_are_cached_by_mask_content(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path))
    mask = two_cells()
    first = cached_border_weights(mask)
    (cached,) = (tmp_path / "border-weights").glob("*.npy")
    np.save(cached, np.full_like(first, 7.0))  # prove the second call reads the file
    assert (cached_border_weights(mask) == 7.0).all()
    other = mask.copy()
    other[0, 0] = 3
    assert not (cached_border_weights(other) == 7.0).all()


def test_weights_reach_the_pipeline_times_the_fov(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path))
    labels = two_cells()
    fov = np.ones(labels.shape, bool)
    fov[:, 25:] = False
    sample = Sample("s", np.zeros((20, 30, 1), np.uint8), mask=labels, fov=fov)
    add_border_weights([sample])
    (item,) = prepare([sample], RunConfig(), resize_to=None)
    np.testing.assert_allclose(item.weight[..., 0], sample.weight * fov)
    assert item.weight[10, 13, 0] == pytest.approx(sample.weight.max(), rel=1e-3)


def test_border_weights_need_weighted_bce():
    cfg = RunConfig()
    cfg.data.border_weights = True
    with pytest.raises(UserError, match="needs --loss weighted-bce"):
        cfg.validate()
    cfg.train.loss = "weighted-bce"
    cfg.validate()
