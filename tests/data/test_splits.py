"""Natural image order, and blocked splits of frames: a block, a gap, reproducible by name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import write_folder_dataset
from layouts import write_ctc
from PIL import Image

from unet_tf.config import DataConfig, RunConfig
from unet_tf.data.checks import DataWarning
from unet_tf.data.formats.folder import list_images, read_folder
from unet_tf.data.io import natural_key
from unet_tf.data.sample import Sample
from unet_tf.data.splits import split_samples
from unet_tf.planning import plan_dataset
from unet_tf.training.resolve import resolve_split


def frames(n: int) -> list[Sample]:
    return [Sample(f"01_t{i:03d}", np.full((4, 4, 1), i, np.uint8)) for i in range(n)]


def test_natural_key_orders_numbers_by_value():
    names = ["img10", "img2", "Img1", "img2b", "a"]
    assert sorted(names, key=natural_key) == ["a", "Img1", "img2", "img2b", "img10"]


def test_folder_images_are_listed_in_natural_order(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        for name in ("img10", "img2", "img1"):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / sub / f"{name}.png")
    assert [p.stem for p in list_images(tmp_path / "images")] == ["img1", "img2", "img10"]
    assert [s.name for s in read_folder(tmp_path)] == ["img1", "img2", "img10"]


def test_blocked_split_validates_on_a_block_with_a_gap_to_training():
    samples = frames(20)
    cfg = DataConfig(split="blocked", split_gap=2, val_split=0.2, split_seed=3)
    train, val = split_samples(samples, cfg)
    idx = [int(s.name[-3:]) for s in val]
    assert len(val) == 4 and idx == list(range(idx[0], idx[0] + 4))  # one contiguous block
    kept = {int(s.name[-3:]) for s in train}
    near = set(range(idx[0] - 2, idx[-1] + 3))
    assert kept == set(range(20)) - near  # 2 frames each side are neither train nor val
    # A rerun splits by the recorded names and gets the same split, gap included.
    again = split_samples(samples, replace(cfg, val_names=[s.name for s in val]))
    assert [s.name for s in again[0]] == [s.name for s in train]
    assert [s.name for s in again[1]] == [s.name for s in val]


def test_random_split_is_unchanged_and_has_no_gap():
    train, val = split_samples(frames(10), DataConfig(split="random", val_split=0.2))
    assert len(train) + len(val) == 10 and len(val) == 2


def test_blocked_folds_are_contiguous():
    cfg = DataConfig(split="blocked", split_gap=0, folds=4, fold=1)
    train, val = split_samples(frames(8), cfg)
    assert [s.name for s in val] == ["01_t002", "01_t003"] and len(train) == 6


def test_a_gap_that_leaves_no_training_frames_is_narrowed_with_a_warning():
    cfg = DataConfig(split="blocked", split_gap=3, val_split=0.25)
    with pytest.warns(DataWarning, match="the gap between validation and training frames is"):
        train, val = split_samples(frames(4), cfg)
    assert len(val) == 1 and len(train) >= 1


def test_auto_split_is_blocked_for_ctc_and_random_for_folders(tmp_path):
    ctc = write_ctc(tmp_path / "ctc", sequences=("01",))
    folder = write_folder_dataset(tmp_path / "folder", n=2)
    assert resolve_split(DataConfig(data=str(ctc))).split == "blocked"
    assert resolve_split(DataConfig(data=str(folder))).split == "random"
    assert resolve_split(DataConfig(data=str(ctc), split="random")).split == "random"
    # the plan's fingerprint reads the same fact from the format registry
    for root, frames in ((ctc, True), (folder, False)):
        plan = plan_dataset(RunConfig(data=DataConfig(data=str(root))), time_steps=False)
        assert plan.fingerprint.time_series is frames
