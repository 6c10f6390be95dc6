"""Every bad input ends in one ``error:`` line (exit 2) or works, with a ``warning:`` line.

Each case was found by a tester: before the fix it crashed with a traceback, gave a
misleading message, or silently produced garbage (an all-zero mask, a model trained
on empty masks). Each case builds its bad input in ``tmp_path`` and runs the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import disk_image, write_folder_dataset
from PIL import Image

from unet_tf.cli import main

SMALL = ["--base-filters", "4", "--depth", "2", "--epochs", "1", "--batch-size", "2"]
TINY = [*SMALL, "--precision", "float32", "--quiet"]


@dataclass
class Case:
    """A command, the exit code it must end with, and words its error or warning must hold."""

    args: list
    code: int
    words: tuple[str, ...]
    check: Callable[[], None] | None = None  # further checks of what a working command wrote


def nan_disk(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A float32 disk image with a 4x4 patch of NaN (and one Inf), and its mask."""
    image, mask = disk_image(size, np.random.default_rng(seed))
    image = image.astype(np.float32)
    image[2:6, 2:6] = np.nan
    image[8, 8] = np.inf
    return image, mask


def folder(root: Path, images: list[np.ndarray], masks: list[np.ndarray]) -> Path:
    """images/ (float TIFF or 8-bit PNG) and masks/ (8-bit PNG) for the given arrays."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        if image.dtype == np.float32:
            tifffile.imwrite(root / "images" / f"im{i}.tif", image)
        else:
            Image.fromarray(image).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"im{i}.png")
    return root


def fit_args(tmp_path: Path, data: Path, *extra) -> list:
    return ["fit", "--data", data, "--run-dir", tmp_path / "run", "--size", "16", *TINY, *extra]


def small_data(tmp_path: Path, mask_value: int | None = None, shape=(16, 16)) -> Path:
    """Two small disk images; masks as drawn, or filled with ``mask_value``."""
    pairs = [disk_image(max(shape), np.random.default_rng(i)) for i in range(2)]
    images = [image[: shape[0], : shape[1]] for image, _ in pairs]
    masks = [mask[: shape[0], : shape[1]] for _, mask in pairs]
    if mask_value is not None:
        masks = [np.full(shape, mask_value, np.uint8) for _ in masks]
    return folder(tmp_path / "data", images, masks)


def nan_predict(tmp_path: Path, run: Path) -> Case:
    image, _ = nan_disk(0)
    tifffile.imwrite(tmp_path / "holes.tif", image)
    out = tmp_path / "out"

    def prediction_is_not_blank() -> None:
        prob = np.array(Image.open(out / "holes_prob.png"))
        assert prob.std() > 0, "a NaN pixel spread over the whole probability map"

    words = ("holes.tif", "17 NaN or Inf pixel(s)")
    return Case(
        ["predict", run, tmp_path / "holes.tif", "--out", out], 0, words, prediction_is_not_blank
    )


def nan_evaluate(tmp_path: Path, run: Path) -> Case:
    pairs = [nan_disk(seed) for seed in range(2)]
    data = folder(tmp_path / "data", *map(list, zip(*pairs, strict=True)))
    return Case(["evaluate", run, "--data", data], 0, ("im0.tif", "NaN or Inf"))


def nan_fit(tmp_path: Path, run: Path) -> Case:
    pairs = [nan_disk(seed, size=16) for seed in range(2)]
    data = folder(tmp_path / "data", *map(list, zip(*pairs, strict=True)))
    return Case(fit_args(tmp_path, data), 0, ("im0.tif", "NaN or Inf"))


def config_text_epochs(tmp_path: Path, run: Path) -> Case:
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epochs: two\n")
    return Case(["fit", "--config", config], 2, ("bad.yaml", "epochs", "whole number"))


def config_text_lr(tmp_path: Path, run: Path) -> Case:
    """YAML reads ``1e-3`` as text; it is read as the number the user meant."""
    config = tmp_path / "lr.yaml"
    config.write_text('train:\n  lr: "1e-3"\n')
    return Case(["fit", "--config", config, *fit_args(tmp_path, small_data(tmp_path))[1:]], 0, ())


def config_binary(tmp_path: Path, run: Path) -> Case:
    config = tmp_path / "model.bin"
    config.write_bytes(bytes(range(128, 256)) * 4)
    return Case(["fit", "--config", config], 2, ("model.bin", "not a text file"))


def config_folder(tmp_path: Path, run: Path) -> Case:
    return Case(["fit", "--config", run], 2, (str(run), "is a folder", "config.yaml"))


def zero_epochs(tmp_path: Path, run: Path) -> Case:
    return Case(["fit", "--epochs", "0"], 2, ("--epochs", "at least 1"))


def corrupt_keras(tmp_path: Path, run: Path) -> Case:
    model = tmp_path / "model.keras"
    model.write_bytes((run / "model.keras").read_bytes()[:2000])  # a truncated copy
    image = tmp_path / "x.png"
    Image.fromarray(disk_image(64, np.random.default_rng(0))[0]).save(image)
    return Case(["predict", model, image, "--out", tmp_path / "out"], 2, ("model.keras", "damaged"))


def savedmodel_without_variables(tmp_path: Path, run: Path) -> Case:
    export = tmp_path / "export"
    assert main(["export", str(run), "--out", str(export)]) == 0
    shutil.rmtree(export / "variables")
    data = write_folder_dataset(tmp_path / "data", n=1)
    return Case(["evaluate", export, "--data", data], 2, (str(export), "variables/"))


def one_pixel_image(tmp_path: Path, run: Path) -> Case:
    image = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(image)
    out = tmp_path / "out"
    return Case(["predict", run, image, "--out", out], 2, ("dot.png", "1x1 px", "too small"))


def augment_bad_value(tmp_path: Path, run: Path) -> Case:
    aug = tmp_path / "aug.yaml"
    aug.write_text("- hflip\n- rotate: {limit: abc}\n")
    return Case(["fit", "--augment", aug], 2, ("aug.yaml", "rotate", "limit", "a number"))


def augment_unknown_parameter(tmp_path: Path, run: Path) -> Case:
    aug = tmp_path / "aug.yaml"
    aug.write_text("rotate: {angle: 30}\n")
    return Case(["fit", "--augment", aug], 2, ("aug.yaml", "rotate", "angle", "takes limit, p"))


def masks_empty(tmp_path: Path, run: Path) -> Case:
    data = small_data(tmp_path, mask_value=0)
    return Case(fit_args(tmp_path, data), 0, ("mask of", "is empty", "Dice 0", "--mask-threshold"))


def masks_full(tmp_path: Path, run: Path) -> Case:
    data = small_data(tmp_path, mask_value=255)
    return Case(
        fit_args(tmp_path, data), 0, ("mask of", "foreground everywhere", "--mask-threshold")
    )


def mask_threshold_too_high(tmp_path: Path, run: Path) -> Case:
    args = fit_args(tmp_path, small_data(tmp_path), "--mask-threshold", "300")
    return Case(args, 0, ("--mask-threshold 300", "masks go up to 255"))


def extreme_aspect_ratio(tmp_path: Path, run: Path) -> Case:
    data = small_data(tmp_path, shape=(3, 80))
    return Case(fit_args(tmp_path, data), 0, ("im0.png", "80x3 px", "--size 16", "--patch"))


def seed_height_out_of_range(tmp_path: Path, run: Path) -> Case:
    data = write_folder_dataset(tmp_path / "data", n=1)
    args = ["predict", run, data / "images", "--instances", "--seed-height", "1.5"]
    return Case([*args, "--out", tmp_path / "out"], 2, ("--seed-height", "between 0 and 1"))


CASES = [
    nan_predict,
    nan_evaluate,
    nan_fit,
    config_text_epochs,
    config_text_lr,
    config_binary,
    config_folder,
    zero_epochs,
    corrupt_keras,
    savedmodel_without_variables,
    one_pixel_image,
    augment_bad_value,
    augment_unknown_parameter,
    masks_empty,
    masks_full,
    mask_threshold_too_high,
    extreme_aspect_ratio,
    seed_height_out_of_range,
]


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_line_or_works(make, tiny_run, tmp_path, capsys):
    case = make(tmp_path, tiny_run[1])  # the shared run: cases only read it
    capsys.readouterr()  # only the case's own command is checked
    code = main([str(a) for a in case.args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == case.code, err
    prefix = "error:" if case.code else "warning:"
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    if case.code:
        assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    if case.words:
        assert any(all(w in line for w in case.words) for line in lines), err
    else:
        assert not lines, err
    if case.check:
        case.check()
