"""Patch training: random crops at full resolution, foreground oversampling, epoch length."""

from __future__ import annotations

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.pipeline import make_dataset, prepare, random_crop, steps_per_epoch
from unet_tf.data.sample import Sample


def sparse_sample(size: int = 128) -> Sample:
    """One small bright square in a large image: a crop rarely finds it by chance."""
    mask = np.zeros((size, size), np.uint8)
    mask[100:104, 20:24] = 255
    image = np.where(mask > 0, 200, 20).astype(np.uint8)[..., None]
    fov = np.ones((size, size), bool)
    fov[:, :8] = False
    return Sample("sparse", image, mask=mask, fov=fov)


def test_crops_cut_the_same_window_from_every_array():
    rng = np.random.default_rng(0)
    base = np.arange(40 * 50, dtype=np.float32).reshape(40, 50, 1)
    for _ in range(20):
        image, target, weight = random_crop(rng, [base, base + 1, base + 2], 16, 0.0)
        assert image.shape == (16, 16, 1)
        np.testing.assert_array_equal(target, image + 1)
        np.testing.assert_array_equal(weight, image + 2)


def test_foreground_oversampling_centres_patches_on_foreground():
    rng = np.random.default_rng(1)
    item = prepare([sparse_sample()], RunConfig(), resize_to=None)[0]
    arrays = [item.image, item.target, item.weight]
    hits = lambda p: np.mean([random_crop(rng, arrays, 32, p)[1].any() for _ in range(200)])  # noqa: E731
    assert hits(1.0) == 1.0
    assert hits(0.0) < 0.35  # a uniform crop contains the square about 10% of the time
    assert 0.2 < hits(0.33) < 0.65


def test_images_smaller_than_the_patch_are_mirrored_up():
    rng = np.random.default_rng(2)
    small = np.arange(10 * 12, dtype=np.float32).reshape(10, 12, 1)
    image, target = random_crop(rng, [small, small.copy()], 16, 0.0)
    assert image.shape == (16, 16, 1)
    np.testing.assert_array_equal(image, target)


def test_patch_batches_carry_the_fov_weight_and_validation_stays_whole():
    cfg = RunConfig()
    cfg.data.patch, cfg.data.fg_prob, cfg.data.augment = 32, 0.5, ["hflip"]
    cfg.train.batch_size = 3
    items = prepare([sparse_sample()], cfg, resize_to=None)
    images, targets, weights = next(iter(make_dataset(items, cfg, training=True)))
    assert images.shape == (3, 32, 32, 1) and targets.shape == (3, 32, 32, 1)
    assert weights.shape == (3, 32, 32, 1)
    assert set(np.unique(weights.numpy())) <= {0.0, 1.0}
    val = list(make_dataset(items, cfg, training=False))
    assert len(val) == 1 and val[0][0].shape == (1, 128, 128, 1)  # full image, batch 1


def test_steps_per_epoch():
    cfg = RunConfig()
    cfg.train.batch_size = 4
    assert steps_per_epoch(15, cfg) == 4  # one pass over the data
    cfg.data.steps_per_epoch = 25
    assert steps_per_epoch(15, cfg) == 25
