"""A folder's images told apart as frames of a sequence or separate photographs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import SHARED, write_folder_dataset
from PIL import Image

from unet_tf.config import DataConfig, RunConfig
from unet_tf.data.checks import DataWarning
from unet_tf.data.formats.registry import read_dataset
from unet_tf.data.sample import Sample
from unet_tf.data.sequence import MIN_IMAGES, frame_likeness
from unet_tf.training.fit import load_training_data


def drifting_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """One random scene of 16 px blobs, shifted 4 px a frame: a time-lapse of a stage drift."""
    rng = np.random.default_rng(seed)
    scene = np.kron(rng.normal(size=(8, 8 + n)), np.ones((16, 16)))
    return [scene[:, 4 * i : 4 * i + 128] for i in range(n)]


def photographs(n: int, seed: int = 0) -> list[np.ndarray]:
    """Unrelated scenes of the same kind: each drawn independently."""
    rng = np.random.default_rng(seed)
    return [np.kron(rng.normal(size=(8, 8)), np.ones((16, 16))) for _ in range(n)]


def as_samples(images: list[np.ndarray]) -> list[Sample]:
    return [Sample(f"f{i:03d}", img[..., None], None) for i, img in enumerate(images)]


def test_drifting_frames_are_frames_and_independent_scenes_are_not():
    frames = frame_likeness(as_samples(drifting_frames(12)))
    scenes = frame_likeness(as_samples(photographs(12)))
    assert frames.frames and frames.neighbour > 0.5
    assert not scenes.frames and abs(scenes.neighbour) < 0.2


def test_shuffled_frames_are_not_frames():
    # the same frames out of order: neighbours in the listing are no longer neighbours in time
    images = drifting_frames(12)
    order = [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert not frame_likeness(as_samples([images[i] for i in order])).frames


@pytest.mark.parametrize("n", [6, 8, 10])
def test_small_folders_of_unrelated_images_are_not_frames(n, tmp_path):
    # by chance a few listing neighbours correlate; the 90th percentile rule keeps them apart
    for size, seed in ((32, 3), (64, 1), (96, 1), (64, 2)):
        root = write_folder_dataset(tmp_path / f"{size}-{seed}", n=n, size=size, seed=seed)
        assert not frame_likeness(read_dataset(root, DataConfig(data=str(root)))).frames


def test_too_few_images_to_tell():
    assert frame_likeness(as_samples(drifting_frames(MIN_IMAGES - 1))) is None


def write_folder(root, images):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i, img in enumerate(images):
        grey = np.clip(img * 40 + 128, 0, 255).astype(np.uint8)
        Image.fromarray(grey).save(root / "images" / f"t{i:03d}.png")
        Image.fromarray((grey > 128).astype(np.uint8) * 255).save(root / "masks" / f"t{i:03d}.png")
    return root


def test_fit_warns_when_a_folder_of_frames_gets_a_random_split(tmp_path):
    frames = write_folder(tmp_path / "frames", drifting_frames(10))
    with pytest.warns(DataWarning, match="frames of one sequence.*--split blocked"):
        load_training_data(RunConfig(data=DataConfig(data=str(frames))))
    # asked for in so many words: no warning (random by choice, or blocked)
    for split in ("random", "blocked"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)
            load_training_data(RunConfig(data=DataConfig(data=str(frames), split=split)))
    scenes = write_folder(tmp_path / "scenes", photographs(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_training_data(RunConfig(data=DataConfig(data=str(scenes))))


@pytest.mark.parametrize(
    ("folder", "frames"),
    [("hela-dic", True), ("isbi2012-em", True), ("drive/training", False)],
)
def test_real_folders(folder, frames):
    root = SHARED / "data" / folder
    if not root.is_dir():
        pytest.skip(f"{root} is absent (../shared/data is not on this machine)")
    likeness = frame_likeness(read_dataset(root, DataConfig(data=str(root))))
    assert likeness.frames is frames
