"""Training targets that separate touching cells, checked by hand on small shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from unet_tf.config import RunConfig
from unet_tf.data import targets as targets_module
from unet_tf.data.pipeline import prepare
from unet_tf.data.sample import Sample
from unet_tf.data.targets import (
    BACKGROUND,
    BORDER,
    INTERIOR,
    TARGETS,
    boundary_target,
    cached_instance_target,
    default_target,
    has_instances,
    instance_target,
    resize_labels,
    scored_classes,
    target_foreground,
)
from unet_tf.errors import UserError
from unet_tf.training.resolve import resolve_target


def classes_of(target: np.ndarray) -> np.ndarray:
    return np.argmax(target, axis=-1)


def test_boundary_band_is_border_width_px_inside_every_cell():
    labels = np.zeros((12, 12), np.uint16)
    labels[2:9, 2:9] = 5  # one 7x7 cell
    for width, interior_side in [(1, 5), (2, 3)]:
        target = boundary_target(labels, width)
        assert target.shape == (12, 12, 3) and target.sum(-1).min() == 1  # one-hot
        c = classes_of(target)
        assert (c[labels == 0] == BACKGROUND).all()
        inner = slice(2 + width, 9 - width)
        assert (c[inner, inner] == INTERIOR).all()
        assert (c == INTERIOR).sum() == interior_side**2
        assert (c == BORDER).sum() == 49 - interior_side**2


def test_touching_cells_get_a_band_on_both_sides_and_the_image_edge_is_no_border():
    labels = np.zeros((6, 10), np.uint16)
    labels[:, :5] = 1  # two cells filling the image, touching between columns 4 and 5
    labels[:, 5:] = 2
    c = classes_of(boundary_target(labels, 1))
    assert (c[:, 4] == BORDER).all() and (c[:, 5] == BORDER).all()
    # The image's edge (rows 0 and 5, columns 0 and 9) is not a cell border.
    assert (c[:, [0, 1, 2, 3, 6, 7, 8, 9]] == INTERIOR).all()


def test_instances_come_from_stored_labels_or_4_connected_components():
    labels = np.zeros((8, 8), np.uint16)
    labels[1:4, 1:7], labels[4:7, 1:7] = 7, 9  # two labelled cells sharing an edge
    assert has_instances(labels)
    c = classes_of(instance_target(labels, "boundary", 1))
    assert (c[3, 2:6] == BORDER).all() and (c[4, 2:6] == BORDER).all()
    binary = ((labels > 0) * 255).astype(np.uint8)  # the same pixels as a binary mask
    assert not has_instances(binary)
    merged = classes_of(instance_target(binary, "boundary", 1))
    assert (merged[3:5, 2:6] == INTERIOR).all()  # one component: no band between them


def many_cells() -> np.ndarray:
    """A 512x512 uint16 label image of 300 discs of radius 14, later ones drawn on top."""
    rng = np.random.default_rng(0)
    labels = np.zeros((512, 512), np.uint16)
    yy, xx = np.mgrid[:512, :512]
    for i in range(300):
        cy, cx = rng.integers(0, 512, 2)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2] = i + 1
    return labels


def test_targets_are_fast_on_hundreds_of_uint16_cells():
    labels = many_cells()
    started = time.perf_counter()
    target = instance_target(labels, "boundary")
    assert time.perf_counter() - started < 0.5
    assert target.shape == (512, 512, 3)


def test_second_call_is_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path))
    labels = np.zeros((16, 16), np.uint16)
    labels[2:8, 2:8], labels[8:14, 2:8] = 1, 2
    first = cached_instance_target(labels, "boundary", 2, size=(8, 8))
    assert len(list((tmp_path / "targets").glob("*.npy"))) == 1

    def not_again(*args, **kwargs):
        raise AssertionError("computed again instead of read from the cache")

    monkeypatch.setattr(targets_module, "instance_target", not_again)
    np.testing.assert_array_equal(cached_instance_target(labels, "boundary", 2, size=(8, 8)), first)
    with pytest.raises(AssertionError):  # other settings are another key
        cached_instance_target(labels, "boundary", 1, size=(8, 8))


def test_resized_targets_keep_touching_cells_apart(tmp_path, monkeypatch):
    """The cells are resized, then the band drawn: a finished band would vanish at 1/4 size."""
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path))
    labels = np.zeros((64, 64), np.uint16)
    labels[8:56, 4:32], labels[8:56, 32:60] = 1, 2
    np.testing.assert_array_equal(
        resize_labels(labels, (16, 16))[4, [0, 1, 7, 8, 15]], [0, 1, 1, 2, 0]
    )
    cfg = RunConfig()
    cfg.data.target, cfg.data.border_width, cfg.model.num_classes = "boundary", 1, 3
    sample = Sample("cells", np.zeros((64, 64, 1), np.float32), labels)
    (item,) = prepare([sample], cfg, resize_to=16)
    c = classes_of(item.target)
    assert item.target.shape == (16, 16, 3)
    assert (c[3:13, 7] == BORDER).all() and (c[3:13, 8] == BORDER).all()
    assert (c[3:13, 2:6] == INTERIOR).all()


def samples(mask: np.ndarray) -> list[Sample]:
    return [Sample("a", np.zeros((*mask.shape, 1), np.float32), mask)]


def test_auto_target_is_distance_for_instance_masks_and_binary_otherwise():
    labels = np.zeros((8, 8), np.uint16)
    labels[1:4, 1:4], labels[4:7, 4:7] = 1, 2
    cfg = resolve_target(RunConfig(), samples(labels))
    assert (cfg.data.target, cfg.model.num_classes, cfg.model.head) == ("distance", 2, "sigmoid")
    assert resolve_target(cfg, samples(labels)) == cfg  # a saved config resolves to itself
    # The plan measures the objects: under 40 px across they get the contact channel.
    assert default_target(True, object_diameter=39.5) == "contact"
    assert default_target(True, object_diameter=40.0) == "distance"
    assert default_target(True, object_diameter=0.0) == "distance"  # none measured
    assert default_target(True, num_classes=3, object_diameter=19.0) == "binary"
    binary = resolve_target(RunConfig(), samples((labels > 0).astype(np.uint8) * 255))
    assert (binary.data.target, binary.model.num_classes) == ("binary", 1)
    weighted = RunConfig()
    weighted.data.border_weights = True  # the U-Net paper's recipe keeps its binary mask
    assert resolve_target(weighted, samples(labels)).data.target == "binary"
    assert scored_classes(3, "boundary") == 1 and scored_classes(3, "binary") == 3
    clash = RunConfig()
    clash.data.target, clash.model.num_classes = "boundary", 2
    with pytest.raises(UserError, match="--target boundary trains 3 output channels"):
        resolve_target(clash, samples(labels))
    assert TARGETS.names() == ("binary", "boundary", "distance", "contact")


def test_each_band_target_resolves_its_own_width_and_a_given_width_wins():
    """``fit --no-plan --target contact`` trains the band the plan would, 4 px."""
    labels = np.zeros((8, 8), np.uint16)
    labels[1:4, 1:4], labels[4:7, 4:7] = 1, 2
    widths = {}
    for target in ("boundary", "contact", "distance", "binary"):
        cfg = RunConfig()
        cfg.data.target = target
        widths[target] = resolve_target(cfg, samples(labels)).data.border_width
    assert widths == {"boundary": 2, "contact": 4, "distance": None, "binary": None}
    cfg = RunConfig()
    cfg.data.target, cfg.data.border_width = "contact", 1
    assert resolve_target(cfg, samples(labels)).data.border_width == 1
    # Built without a resolved config, a target draws its own band, as fit would.
    np.testing.assert_array_equal(
        instance_target(labels, "contact"), instance_target(labels, "contact", border_width=4)
    )


def test_distance_target_of_two_touching_squares():
    """Squares 1 (5x5) and 2 (5x5) share an edge: cell 1 gives up its contact column."""
    labels = np.zeros((7, 12), np.uint16)
    labels[1:6, 1:6], labels[1:6, 6:11] = 1, 2
    target = instance_target(labels, "distance")
    assert target.shape == (7, 12, 2) and target.dtype == np.float32
    np.testing.assert_array_equal(target[..., 0], labels > 0)  # the whole foreground
    distance = target[..., 1]
    assert (distance[1:6, 5] == 0).all()  # the gap: cell 1's last column
    # Cell 1 is 4 px wide after the gap: distances 1, 2, 2, 1 across, peak 2.
    np.testing.assert_allclose(distance[3, 1:5], [0.5, 1.0, 1.0, 0.5])
    # Cell 2 keeps all 5 px: 1, 2, 3, 2, 1, peak 3 at its centre.
    np.testing.assert_allclose(distance[3, 6:11], [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3], rtol=1e-6)
    assert distance[labels == 0].max() == 0
    assert distance[0:7, 0].max() == 0 and distance.max() == pytest.approx(1.0)


def test_contact_band_lies_where_two_cells_come_within_border_width():
    """Squares 1 and 2 share an edge; square 3 stands 3 px from 2 across the background."""
    labels = np.zeros((7, 19), np.uint16)
    labels[1:6, 1:6], labels[1:6, 6:11], labels[1:6, 14:18] = 1, 2, 3
    target = instance_target(labels, "contact", border_width=1)
    assert target.shape == (7, 19, 3) and target.dtype == np.float32
    np.testing.assert_array_equal(target[..., :2], instance_target(labels, "distance"))
    contact = target[..., 2] > 0
    # Within 1 px (4-neighbours) of both 1 and 2: the two columns that meet, rows 1-5.
    expected = np.zeros_like(contact)
    expected[1:6, 5:7] = True
    np.testing.assert_array_equal(contact, expected)
    # Radius 2 reaches a row beyond the cells at the contact, 2 px into each, and the
    # middle of the 3 px gap between 2 and 3 (column 12 lies 2 px from both).
    wide = instance_target(labels, "contact", border_width=2)[..., 2] > 0
    assert wide[0, 5] and wide[6, 6] and wide[3, 4:8].all() and not wide[3, 3:9:5].any()
    assert wide[1:6, 12].all() and not wide[:, [9, 10, 11, 13, 14]].any()
    labels[1:6, 14:18] = 0
    labels[1:6, 12:16] = 3  # now 1 px of background between 2 and 3
    gap = instance_target(labels, "contact", border_width=1)[..., 2] > 0
    assert gap[1:6, 11].all() and not gap[:, 10].any() and not gap[:, 12].any()


def test_contact_target_of_uint16_labels_past_65534():
    """The band's "no cell" sentinel is one past the largest label, so it needs room."""
    labels = np.zeros((4, 6), np.uint16)
    labels[:, :3], labels[:, 3:] = 65534, 65535
    contact = instance_target(labels, "contact", border_width=1)[..., 2]
    np.testing.assert_array_equal(contact[:, 2:4], 1.0)
    assert contact[:, [0, 1, 4, 5]].max() == 0


def test_distance_target_is_fast_on_300_uint16_cells():
    labels = many_cells()
    started = time.perf_counter()
    target = instance_target(labels, "distance")
    assert time.perf_counter() - started < 0.5
    peaks = [target[..., 1][labels == k].max() for k in np.unique(labels)[1:]]
    # Every cell peaks at 1, but a one-pixel sliver left of an overlapped disc, all gap.
    assert set(np.round(peaks, 6)) == {0.0, 1.0} and np.mean(np.equal(peaks, 1.0)) > 0.99


def test_distance_target_resolves_two_sigmoid_channels_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path))
    labels = np.zeros((16, 16), np.uint16)
    labels[2:8, 2:8], labels[8:14, 2:8] = 1, 2
    cfg = RunConfig()
    cfg.data.target = "distance"
    resolved = resolve_target(cfg, samples(labels))
    assert (resolved.model.num_classes, resolved.model.activation) == (2, "sigmoid")
    assert resolve_target(resolved, samples(labels)) == resolved
    contact = RunConfig()
    contact.data.target = "contact"
    contact = resolve_target(contact, samples(labels)).model
    assert (contact.num_classes, contact.activation) == (3, "sigmoid")
    softmax = RunConfig()
    softmax.data.target = "boundary"
    boundary = resolve_target(softmax, samples(labels)).model
    assert (boundary.activation, boundary.head) == ("softmax", "softmax")
    first = cached_instance_target(labels, "distance", size=(8, 8))
    assert first.shape == (8, 8, 2)
    assert len(list((tmp_path / "targets").glob("*.npy"))) == 1
    np.testing.assert_array_equal(cached_instance_target(labels, "distance", size=(8, 8)), first)
    assert len(list((tmp_path / "targets").glob("*.npy"))) == 1


def test_boundary_target_takes_the_border_weights():
    cfg = RunConfig()
    cfg.data.target, cfg.data.border_weights, cfg.train.loss = "boundary", True, "weighted-bce"
    cfg.model.num_classes = 3
    cfg.validate()
    cfg.data.target, cfg.model.num_classes = "distance", 1  # as given, before resolving
    with pytest.raises(UserError, match="need --target binary or boundary"):
        cfg.validate()


def test_target_foreground_reads_each_kind_of_target():
    """Channel 0 of sigmoid targets, not-background of one-hot ones; never the distance map."""
    cells = np.zeros((6, 6), np.int32)
    cells[1:5, 1:3], cells[1:5, 3:5] = 1, 2
    truth = cells > 0
    binary = truth[..., None].astype(np.float32)
    assert np.array_equal(target_foreground(binary, "binary"), truth)
    for name in ("boundary", "distance", "contact"):
        built = TARGETS.get(name).build(cells, 1)
        assert np.array_equal(target_foreground(built, name), truth), name
    # A distance map that is 0 inside the cells must not read as background.
    distance = np.stack([truth, np.zeros_like(truth)], axis=-1).astype(np.float32)
    assert np.array_equal(target_foreground(distance, "distance"), truth)
