"""``--object-size``: objects measured from a mask, and images rescaled to one object size."""

from __future__ import annotations

import numpy as np
import pytest

from unet_tf.config import RunConfig
from unet_tf.data.pipeline import prepare
from unet_tf.data.sample import Sample
from unet_tf.data.scale import MAX_FACTOR, object_diameter, scale_factor, scaled_shape
from unet_tf.errors import UserError
from unet_tf.training.resolve import resolve_config


def discs(shape: tuple[int, int], centres: list[tuple[int, int]], radius: float) -> np.ndarray:
    """uint16 labels 1..N of discs of ``radius`` px at ``centres``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.uint16)
    for i, (y, x) in enumerate(centres, start=1):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = i
    return labels


def test_a_disc_measures_its_diameter():
    # The nearest background pixel to a radius-10 disc's centre is (10, 1) px away,
    # the first outside the disc, so the inscribed diameter reads 2 x sqrt(101).
    assert object_diameter(discs((64, 64), [(32, 32)], 10) > 0) == pytest.approx(2 * 101**0.5)


def test_touching_cells_merged_into_one_component_keep_one_cells_diameter():
    # What a rough first prediction gives: two touching discs, one component.
    pair = discs((64, 96), [(32, 30), (32, 50)], 10) > 0
    one = discs((64, 96), [(32, 30)], 10) > 0
    assert object_diameter(pair) == pytest.approx(object_diameter(one))


def test_specks_of_debris_do_not_decide_the_scale():
    mask = discs((128, 128), [(40, 40), (90, 90)], 12) > 0
    mask[2:120:6, 120] = True  # 20 one-pixel specks: more components than cells
    assert object_diameter(mask) == pytest.approx(2 * 145**0.5)  # radius 12


def test_an_empty_mask_measures_nothing_and_keeps_the_scale():
    assert object_diameter(np.zeros((8, 8), bool)) is None
    assert scale_factor(None, 20) == 1.0


def test_factors_bring_objects_to_the_size_and_stay_within_bounds():
    assert scale_factor(10.0, 20) == pytest.approx(2.0)
    assert scale_factor(19.0, 20) == 1.0  # within 10%: not worth a resize's blur
    assert scale_factor(1.0, 20) == MAX_FACTOR
    assert scaled_shape((50, 75), 2.0) == (100, 150)


def test_training_rescales_each_image_to_the_object_size():
    cfg = RunConfig()
    cfg.data.patch, cfg.data.target = 32, "distance"
    cfg.data.object_size = 4 * 101**0.5  # twice the small disc's diameter
    cfg.model.num_classes = 2
    small = Sample("small", np.zeros((64, 64, 1), np.uint8), discs((64, 64), [(32, 32)], 10))
    large = Sample("large", np.zeros((64, 64, 1), np.uint8), discs((64, 64), [(32, 32)], 20))
    items = prepare([small, large], cfg, resize_to=None)
    # small: factor 2; large (2 x sqrt(401) = 40.05 px) is within 10% and stays as it is.
    assert items[0].image.shape == (128, 128, 1)
    assert items[0].target.shape[:2] == (128, 128)
    assert object_diameter(items[0].target[..., 0] > 0) == pytest.approx(40.2, rel=0.08)
    assert items[1].image.shape == (64, 64, 1)


def test_object_size_with_resized_training_is_a_one_line_error():
    cfg = RunConfig()
    cfg.data.object_size = 20.0  # and --size 256, the default: images squashed, not rescaled
    sample = Sample("a", np.zeros((64, 64, 1), np.uint8), discs((64, 64), [(32, 32)], 10))
    with pytest.raises(UserError, match=r"--object-size .* trains on --patch crops"):
        resolve_config(cfg, [sample], [])
