"""Augmentations keep image, mask and weights aligned, on any dtype; YAML specs; the preview."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_folder_dataset
from layouts import write_drive
from PIL import Image

from unet_tf.cli import main
from unet_tf.config import RunConfig
from unet_tf.data.augment import (
    TRANSFORMS,
    apply,
    build_augmenter,
    parse_augment_option,
)
from unet_tf.data.pipeline import make_dataset, prepare
from unet_tf.data.preview import write_preview
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError

GEOMETRIC = ("hflip", "vflip", "rot90", "rotate", "elastic", "affine")
INTENSITY = ("brightness-contrast", "gamma", "noise", "blur")


def l_shape(size: int = 64) -> np.ndarray:
    """An asymmetric L, so every flip and rotation gives a different, predictable mask."""
    mask = np.zeros((size, size), np.float32)
    mask[10:50, 14:24] = 1
    mask[40:50, 14:44] = 1
    return mask


def encoded(mask: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """An image whose bright pixels are exactly the mask."""
    high = {np.uint8: 220, np.uint16: 50000, np.float32: 0.9}[dtype]
    low = {np.uint8: 30, np.uint16: 2000, np.float32: 0.1}[dtype]
    return np.where(mask > 0, high, low).astype(dtype)[..., None]


def run(name: str, image: np.ndarray, mask: np.ndarray, seed: int = 0, **params):
    augmenter = build_augmenter([{name: {"p": 1.0, **params}}], seed=seed)
    target = mask[..., None].astype(np.float32)
    return apply(augmenter, image, target, target.copy())


def test_every_transform_is_registered():
    assert set(GEOMETRIC + INTENSITY) == set(TRANSFORMS)


@pytest.mark.parametrize("name", GEOMETRIC)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_transforms_move_image_mask_and_weight_together(name, seed):
    mask = l_shape()
    image, target, weight = run(name, encoded(mask), mask, seed)
    np.testing.assert_array_equal(weight, target)  # weights and FOV travel with the mask
    assert set(np.unique(target)) <= {0.0, 1.0}  # nearest neighbour: labels stay labels
    bright = image[..., 0] > 125
    agreement = (bright == (target[..., 0] > 0.5)).mean()
    assert agreement > 0.97, agreement  # only interpolated boundary pixels may differ


def test_flips_and_rot90_give_the_predicted_mask():
    mask = l_shape()
    _, target, _ = run("hflip", encoded(mask), mask)
    np.testing.assert_array_equal(target[..., 0], np.fliplr(mask))
    _, target, _ = run("vflip", encoded(mask), mask)
    np.testing.assert_array_equal(target[..., 0], np.flipud(mask))
    for seed in range(4):
        image, target, _ = run("rot90", encoded(mask), mask, seed)
        assert any(np.array_equal(target[..., 0], np.rot90(mask, k)) for k in range(4))
        np.testing.assert_array_equal(image[..., 0] > 125, target[..., 0] > 0)


def test_rotation_keeps_the_area_and_the_centre_of_the_shape():
    mask = l_shape()
    image, target, _ = run("rotate", encoded(mask), mask, seed=5, limit=90)
    assert not np.array_equal(target[..., 0], mask)
    assert abs(target.sum() - mask.sum()) < 0.05 * mask.sum()
    ys, xs = np.nonzero(image[..., 0] > 125)
    ty, tx = np.nonzero(target[..., 0])
    assert abs(ys.mean() - ty.mean()) < 1 and abs(xs.mean() - tx.mean()) < 1


def test_elastic_without_displacement_is_the_identity():
    mask = l_shape()
    image, target, _ = run("elastic", encoded(mask), mask, std=0.0)
    np.testing.assert_array_equal(target[..., 0], mask)
    np.testing.assert_allclose(image, encoded(mask).astype(np.float32))


def test_elastic_moves_one_hot_targets_with_many_classes():
    mask = l_shape()
    one_hot = np.eye(5, dtype=np.float32)[(mask * 3).astype(int)]
    augmenter = build_augmenter([{"elastic": {"p": 1.0, "std": 6}}], seed=1)
    image, target, weight = apply(augmenter, encoded(mask), one_hot, one_hot[..., :1])
    assert target.shape == (64, 64, 5) and weight.shape == (64, 64, 1)
    np.testing.assert_array_equal(target.sum(-1), 1)  # still one class per pixel
    assert ((image[..., 0] > 125) == (target[..., 3] > 0)).mean() > 0.97


@pytest.mark.parametrize("name", INTENSITY)
def test_intensity_transforms_leave_the_mask_alone(name):
    mask = l_shape()
    ramp = np.linspace(0, 30, 64, dtype=np.float32)[None, :, None]  # mid-tones for gamma
    source = (encoded(mask) + ramp).astype(np.uint8)
    image, target, _ = run(name, source, mask, seed=3)
    np.testing.assert_array_equal(target[..., 0], mask)
    assert np.abs(image - source).mean() > 0.5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_all_transforms_work_on_8_bit_16_bit_and_float(dtype):
    mask = l_shape()
    source = encoded(mask, dtype)
    low, high = float(source.min()), float(source.max())
    for name in TRANSFORMS:
        image, target, _ = run(name, source, mask, seed=2)
        assert image.dtype == np.float32 and image.shape == source.shape, name
        span = high - low
        assert low - 0.01 * span <= image.min() and image.max() <= high + 0.01 * span, name
        assert target.shape == (64, 64, 1)


def test_parameters_names_and_yaml_files(tmp_path):
    assert parse_augment_option("hflip, rot90") == ["hflip", "rot90"]
    listed = tmp_path / "aug.yaml"
    listed.write_text("- hflip\n- elastic: {std: 8, p: 0.3}\n- gamma\n")
    assert parse_augment_option(str(listed)) == [
        "hflip",
        {"elastic": {"std": 8, "p": 0.3}},
        "gamma",
    ]
    mapping = tmp_path / "aug.yml"
    mapping.write_text("vflip:\nnoise: {std: 0.1}\n")
    specs = parse_augment_option(str(mapping))
    assert specs == ["vflip", {"noise": {"std": 0.1}}]
    assert len(build_augmenter(specs).transforms) == 2
    assert build_augmenter(["none"]) is None


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["twirl"], "unknown augmentation.*twirl.*choose from hflip"),
        ([{"elastic": {"sigma": 3}}], "elastic has no parameter.*sigma.*takes std, grid, p"),
        ([{"elastic": {"grid": 1}}], "augmentation elastic with .*grid >= 2"),
        ([{"hflip": 3}], "cannot read augmentation"),
    ],
)
def test_bad_specs_are_user_errors(specs, message):
    with pytest.raises(UserError, match=message):
        build_augmenter(specs)


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "aug.yaml"
    bad.write_text("hflip: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        parse_augment_option(str(bad))
    with pytest.raises(UserError, match="augmentation file not found"):
        parse_augment_option(str(tmp_path / "missing.yaml"))


def test_tuned_augmentations_round_trip_through_config_yaml(tmp_path):
    cfg = RunConfig()
    cfg.data.augment = ["hflip", {"elastic": {"std": 8, "p": 0.3}}]
    cfg.save(tmp_path / "config.yaml")
    assert RunConfig.load(tmp_path / "config.yaml").data.augment == cfg.data.augment


def test_training_batches_stay_aligned_through_the_pipeline():
    mask = l_shape()
    sample = Sample("l", encoded(mask, np.uint16), mask=(mask * 255).astype(np.uint8))
    cfg = RunConfig()
    cfg.data.patch, cfg.data.fg_prob = 32, 1.0
    cfg.data.augment = [*GEOMETRIC, "brightness-contrast", "gamma"]
    cfg.train.batch_size = 4
    items = prepare([sample], cfg, resize_to=None)
    for images, targets in make_dataset(items, cfg, training=True).take(3):
        assert images.shape == (4, 32, 32, 1)
        for image, target in zip(images.numpy(), targets.numpy(), strict=True):
            assert target.any()  # fg_prob 1: every patch is centred on the shape
            threshold = (image.min() + image.max()) / 2
            agreement = ((image[..., 0] > threshold) == (target[..., 0] > 0.5)).mean()
            assert agreement > 0.93


def test_preview_grid_png(tmp_path):
    cfg = RunConfig()
    cfg.data.data = str(write_folder_dataset(tmp_path / "d", n=3))
    cfg.data.size = 64
    cfg.data.augment = ["hflip", "elastic", "gamma"]
    out = write_preview(cfg, tmp_path / "grid.png", rows=2, cols=3)
    grid = np.array(Image.open(out))
    assert grid.shape == (2 * 64 + 4, 3 * 64 + 2 * 4, 3)
    assert (grid[..., 1] > grid[..., 0] + 60).any()  # green mask outlines are drawn
    with pytest.raises(UserError, match="already exists"):
        write_preview(cfg, out)


def test_augment_preview_cli_on_drive_patches(tmp_path, capsys):
    data = write_drive(tmp_path / "drive")
    out = tmp_path / "grid.png"
    args = ["augment-preview", "--data", str(data), "--patch", "32", "--rows", "2"]
    assert main([*args, "--cols", "4", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    grid = np.array(Image.open(out))
    assert grid.shape == (2 * 32 + 4, 4 * 32 + 3 * 4, 3)
