"""The 2018 Data Science Bowl layout: per-nucleus masks merged, grey / colour, scoring."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, shared_path
from PIL import Image

from unet_tf.config import DataConfig, RunConfig
from unet_tf.data.checks import DataWarning
from unet_tf.data.formats.dsb import read_dsb
from unet_tf.data.formats.registry import detect_format, read_dataset
from unet_tf.data.pipeline import make_dataset, prepare
from unet_tf.errors import UserError
from unet_tf.evaluation.scoring import evaluate_samples
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import InferenceOptions, Predictor
from unet_tf.inference.writers import collect_inputs

# The colour pixel of the grey-conversion test, and its luma by hand:
# 0.299 * 100 + 0.587 * 50 + 0.114 * 200 = 29.9 + 29.35 + 22.8 = 82.05 -> 82.
RGB_PIXEL, LUMA_PIXEL = (100, 50, 200), 82


def nuclei(shape: tuple[int, int]) -> list[np.ndarray]:
    """Three nuclei: an 8x8 and an 8x6 square that touch, and a 5x5 one apart."""
    masks = [np.zeros(shape, bool) for _ in range(3)]
    masks[0][4:12, 4:12] = True
    masks[1][4:12, 12:18] = True
    masks[2][20:25, 20:25] = True
    return masks


def write_dsb_image(
    root: Path, image_id: str, masks: list[np.ndarray], colour: bool = False
) -> np.ndarray:
    """``<id>/images/<id>.png`` as RGBA (grey in RGB, or with one colour pixel) and its masks."""
    shape = masks[0].shape
    grey = (40 + 150 * np.any(masks, axis=0)).astype(np.uint8)
    rgba = np.stack([grey, grey, grey, np.full(shape, 255, np.uint8)], axis=-1)
    if colour:
        rgba[0, 0, :3] = RGB_PIXEL
    (root / image_id / "images").mkdir(parents=True)
    (root / image_id / "masks").mkdir()
    Image.fromarray(rgba, "RGBA").save(root / image_id / "images" / f"{image_id}.png")
    for k, mask in enumerate(masks):
        name = f"{k:02d}{image_id[:4]}.png"  # Kaggle names masks by a hash; order by name
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / image_id / "masks" / name)
    return rgba


def write_dsb(root: Path) -> Path:
    """Two grey images of different sizes, the first with an overlap between two masks."""
    overlapping = nuclei((32, 40))
    overlapping[1][4:12, 10:18] = True  # now overlaps nucleus 0 in columns 10-11
    write_dsb_image(root, "aa01", overlapping)
    write_dsb_image(root, "bb02", nuclei((28, 28))[:2])
    return root


def test_masks_merge_into_instance_labels_and_the_first_claim_wins(tmp_path):
    root = write_dsb(tmp_path / "stage1_train")
    assert detect_format(root) == "dsb"
    samples = read_dataset(root, DataConfig())
    assert [s.name for s in samples] == ["aa01", "bb02"]
    first = samples[0]
    assert first.image.shape == (32, 40, 1) and first.image.dtype == np.uint8  # alpha dropped
    assert first.mask.dtype == np.uint16 and first.mask.shape == (32, 40)
    assert (first.mask[4:12, 4:12] == 1).all()  # nucleus 0 keeps the overlap, columns 10-11
    assert (first.mask[4:12, 12:18] == 2).all() and (first.mask == 2).sum() == 48
    assert (first.mask == 3).sum() == 25 and set(np.unique(first.mask)) == {0, 1, 2, 3}
    assert samples[1].shape == (28, 28) and samples[1].mask.max() == 2


def test_mixed_grey_and_colour_become_grey_with_one_warning(tmp_path):
    root = tmp_path / "dsb"
    write_dsb_image(root, "grey", nuclei((32, 32)))
    write_dsb_image(root, "he", nuclei((32, 32)), colour=True)
    with pytest.warns(DataWarning, match="1 of 2 DSB images are colour"):
        samples = read_dsb(root)
    assert [s.channels for s in samples] == [1, 1]
    colour = samples[1].image
    assert colour[0, 0, 0] == LUMA_PIXEL and colour[5, 5, 0] == 190  # grey pixels keep value


def test_all_colour_stays_rgb_without_warning(tmp_path):
    root = tmp_path / "dsb"
    write_dsb_image(root, "he1", nuclei((32, 32)), colour=True)
    write_dsb_image(root, "he2", nuclei((32, 32)), colour=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        samples = read_dsb(root)
    assert all(s.image.shape == (32, 32, 3) for s in samples)
    assert tuple(samples[0].image[0, 0]) == RGB_PIXEL


def test_missing_masks_stray_folders_and_size_mismatches_are_one_line_errors(tmp_path):
    root = write_dsb(tmp_path / "dsb")
    for mask in (root / "bb02" / "masks").iterdir():
        mask.unlink()
    assert read_dsb(root)[1].mask.max() == 0  # an empty masks/ folder: no nuclei
    (root / "bb02" / "masks").rmdir()
    with pytest.raises(UserError, match="have no masks/ folder: bb02"):
        read_dsb(root)
    assert read_dsb(root, require_masks=False)[1].mask is None  # stage1_test: images only
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "aa01" / "masks" / "zz.png")
    with pytest.raises(UserError, match=r"zz\.png is 8x8 but its image aa01\.png is 40x32"):
        read_dsb(root, require_masks=False)
    (root / "notes").mkdir()
    with pytest.raises(UserError, match=r"have no images/<id>\.png: notes"):
        read_dsb(root)


@pytest.mark.parametrize("size,patch", [(24, None), (None, 16)])
def test_mixed_image_sizes_batch_resized_or_as_patches(tmp_path, size, patch):
    root = write_dsb(tmp_path / "dsb")
    cfg = RunConfig()
    cfg.data.size, cfg.data.patch, cfg.train.batch_size = size, patch, 2
    items = prepare(read_dataset(root, cfg.data), cfg, size)
    image, target = next(iter(make_dataset(items, cfg, training=True)))[:2]
    side = size or patch
    assert image.shape == (2, side, side, 1) and target.shape == (2, side, side, 1)


def test_dsb_nuclei_are_scored_as_objects(tmp_path):
    """A prediction equal to the foreground merges the two touching nuclei into one object.

    Reference: A (8x8 = 64 px) and B (8x6 = 48 px) touching, C (25 px) apart.
    Prediction: A+B as one object (112 px) and C exactly. IoU(A, A+B) = 64/112 = 0.571,
    IoU(B, A+B) = 48/112 = 0.429, IoU(C, C) = 1. At t = 0.5 and 0.55: TP 2 (C; A), FP 0,
    FN 1 (B): AP 2/3, F1 4/5, PQ = (1 + 4/7) / (2 + 1/2) = 22/35. From 0.6: TP 1, FP 1,
    FN 2: AP 1/4. Mean AP = (2 x 2/3 + 8 x 1/4) / 10 = 1/3. SEG: A matches at 4/7, B at
    3/7 (48 > 24 of its pixels lie in the merge), C at 1: (1 + 4/7 + 3/7) / 3 = 2/3.
    One merge (both A and B lie in it), no split.
    """
    root = tmp_path / "dsb"
    masks = nuclei((32, 32))
    write_dsb_image(root, "cells", masks)
    samples = read_dataset(root, DataConfig())
    probs = np.any(masks, axis=0).astype(np.float32)
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth = 1, 1
    network = lambda batch: np.broadcast_to(probs[None, ..., None], (*batch.shape[:3], 1))  # noqa: E731
    predictor = Predictor(network, cfg, InferenceOptions(tile=0))
    result = evaluate_samples(predictor, samples, instances=InstanceOptions())
    row = result.images[0]
    assert row["seg"] == pytest.approx(2 / 3)
    assert row["ap50"] == pytest.approx(2 / 3) and row["map"] == pytest.approx(1 / 3)
    assert row["f1_50"] == pytest.approx(4 / 5) and row["pq"] == pytest.approx(22 / 35)
    assert (row["splits"], row["merges"]) == (0, 1)
    assert row["dice"] == 1.0  # every pixel right, yet one cell is lost


def test_evaluate_instances_on_a_dsb_folder(tmp_path, capsys):
    from unet_tf.models.unet import build_unet

    root = write_dsb(tmp_path / "dsb")
    model = tmp_path / "grey.keras"
    build_unet(1, 1, depth=2, base_filters=4).save(model)
    scores = tmp_path / "scores.json"
    args = ["evaluate", model, "--data", root, "--instances", "--json", scores]
    code, text, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "ap50" in text and "merges" in text
    result = json.loads(scores.read_text())
    assert {"seg", "ap50", "map", "f1_50", "pq", "splits", "merges"} <= set(result["dataset"])
    assert result["objects"]["reference"] == 5  # 3 + 2 nuclei
    assert len(result["objects"]["thresholds"]) == 10


def test_real_dsb_images_read_as_downloaded(tmp_path):
    """Two grey images (256x256 and 256x320) and one H&E image, linked into a small root."""
    stage1 = shared_path("data", "dsb2018", "stage1_train")
    ids = {
        "3d0ca3498d97edebd28dbc7035eced40baa4af199af09cbb7251792accaa69fe": (256, 256, 4),
        "220b37f4ca7cab486d2b71cd87a46ee7411a5aa142799d96ed98015ab5ba538a": (256, 320, 1),
        "01d44a26f6680c42ba94c9bc6339228579a95d0e2695b149b7cc0c9592b21baf": (256, 320, 7),
    }
    root = tmp_path / "stage1_train"
    root.mkdir()
    for image_id in ids:
        (root / image_id).symlink_to(stage1 / image_id, target_is_directory=True)
    assert detect_format(root) == "dsb"
    with pytest.warns(DataWarning, match="1 of 3 DSB images are colour"):
        samples = read_dataset(root, DataConfig())
    for sample in samples:
        h, w, count = ids[sample.name]
        assert sample.image.shape == (h, w, 1) and sample.mask.dtype == np.uint16
        assert sample.mask.max() == count == len(np.unique(sample.mask)) - 1
        files = list((stage1 / sample.name / "masks").iterdir())
        union = np.any([np.array(Image.open(f)) > 0 for f in files], axis=0)
        np.testing.assert_array_equal(sample.mask > 0, union)


def test_predict_inputs_read_a_dsb_folder_by_id_with_or_without_masks(tmp_path):
    """``unet-tf predict RUN stage1_test/``: the Kaggle layout is an input like a folder."""
    root = write_dsb(tmp_path / "stage1_test")
    samples = collect_inputs([root])
    assert [s.name for s in samples] == ["aa01", "bb02"]
    assert samples[0].image.shape == (32, 40, 1) and samples[0].mask.max() == 3
    for entry in root.iterdir():  # stage1_test ships without masks/
        for mask in (entry / "masks").iterdir():
            mask.unlink()
        (entry / "masks").rmdir()
    assert [s.mask for s in collect_inputs([root])] == [None, None]
