"""StarDist 2D's half of ``experiments/stardist_dsb.py``: train, tune, predict.

Runs in its own environment (``experiments/requirements-stardist.txt``), never in
unet-tf's: StarDist is the peer we compare against, not a dependency. It reads the
split that ``stardist_dsb.py`` laid out (``train/``, ``val/``, ``test/``, each a DSB
folder of ``<id>/images/<id>.png`` and ``<id>/masks/*.png``), trains StarDist 2D from
scratch for a wall-clock budget, chooses its probability and NMS thresholds on
``val/`` with StarDist's own ``optimize_thresholds``, and writes one uint16 label TIFF
per ``test/`` image. The orchestrator scores those with unet-tf's object scores, so
both tools are scored by the same code.

Images are read the way unet-tf's DSB reader reads a mixed set: colour images as
ITU-R 601 luma, grey ones as their one channel, then StarDist's usual per-image
percentile normalisation (1, 99.8).

    /work/venv-stardist/bin/python experiments/stardist_side.py SPLIT OUT --budget 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile
from csbdeep.utils import normalize
from PIL import Image
from stardist import fill_label_holes
from stardist.models import Config2D, StarDist2D
from tensorflow import keras

LUMA = np.array([0.299, 0.587, 0.114])


def read_image(folder: Path) -> np.ndarray:
    """(H, W) float32 grey image of one DSB entry."""
    rgb = np.asarray(Image.open(folder / "images" / f"{folder.name}.png"))[..., :3]
    rgb = rgb.astype(np.float32)
    grey = rgb[..., 0] if np.all(rgb == rgb[..., :1]) else rgb @ LUMA
    return normalize(grey, 1, 99.8, axis=(0, 1)).astype(np.float32)


def read_labels(folder: Path) -> np.ndarray:
    """The per-nucleus PNGs merged into labels; the first nucleus keeps a shared pixel."""
    files = sorted((folder / "masks").glob("*.png"))
    labels = None
    for k, path in enumerate(files, start=1):
        mask = np.asarray(Image.open(path)) > 0
        if labels is None:
            labels = np.zeros(mask.shape, np.uint16)
        labels[mask & (labels == 0)] = k
    return fill_label_holes(labels)


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


class WallClock(keras.callbacks.Callback):
    """Stop training once ``seconds`` of wall time have passed (checked every batch)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.start, self.steps = seconds, time.monotonic(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path, help="folder with train/, val/, test/")
    parser.add_argument("out", type=Path)
    parser.add_argument("--budget", type=float, default=600, help="training seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    np.random.seed(args.seed)
    keras.utils.set_random_seed(args.seed)

    data = {
        part: [(read_image(f), read_labels(f), f.name) for f in entries(args.split / part)]
        for part in ("train", "val", "test")
    }
    x_train = [x for x, _, _ in data["train"]]
    y_train = [y for _, y, _ in data["train"]]
    x_val = [x for x, _, _ in data["val"]]
    y_val = [y for _, y, _ in data["val"]]

    # StarDist's DSB example set-up: 32 rays, grid 2, 256 px patches (every DSB image
    # has a side of at least 256), flips and 90-degree rotations as augmentation.
    config = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=1,
        train_patch_size=(256, 256),
        train_batch_size=4,
        train_epochs=10_000,
        train_steps_per_epoch=25,
        train_tensorboard=False,  # TensorBoard is not in this environment
    )
    model = StarDist2D(config, name="stardist", basedir=str(args.out))
    model.prepare_for_training()
    clock = WallClock(args.budget)
    model.callbacks.append(clock)

    def augment(x, y):
        k = np.random.randint(4)
        x, y = np.rot90(x, k), np.rot90(y, k)
        if np.random.rand() < 0.5:
            x, y = np.fliplr(x), np.fliplr(y)
        return x, y

    # StarDist validates on a fixed set every epoch; a small one keeps the budget for steps.
    start, cpu = time.monotonic(), time.process_time()
    model.train(x_train, y_train, validation_data=(x_val[:8], y_val[:8]), augmenter=augment)
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - cpu
    thresholds = model.optimize_thresholds(x_val, y_val)

    predictions = args.out / "labels"
    predictions.mkdir(parents=True, exist_ok=True)
    for x, _, name in data["test"]:
        labels, _ = model.predict_instances(x)
        tmp = predictions / f".{name}.tif.tmp"
        tifffile.imwrite(tmp, labels.astype(np.uint16))
        tmp.replace(predictions / f"{name}.tif")
    summary = {
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "steps": clock.steps,
        "thresholds": thresholds,
        "images": {part: len(items) for part, items in data.items()},
    }
    tmp = args.out / ".stardist.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(args.out / "stardist.json")


if __name__ == "__main__":
    main()
