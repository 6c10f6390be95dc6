"""``augment-preview``: a grid of training samples exactly as the network receives them.

Each row is one image: first as prepared (resized, or whole when training on
patches), then several draws from the real training pipeline, with its crops,
augmentations and weights. The mask is drawn as a green outline and pixels with zero
loss weight (outside a field of view) are darkened, so a misaligned mask, an
over-strong deformation or a bad crop is obvious at a glance.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import read_dataset
from unet_tf.data.io import write_png
from unet_tf.data.pipeline import make_dataset, prepare
from unet_tf.data.targets import target_foreground
from unet_tf.errors import UserError
from unet_tf.rundir import check_new_outputs
from unet_tf.viz import TP, display_rgb

GAP = 4


def tile(
    image: np.ndarray, target: np.ndarray, weight: np.ndarray | None, side: int, name: str
) -> np.ndarray:
    """One sample as a ``side`` x ``side`` RGB picture with its mask outlined."""
    rgb = display_rgb(image)
    foreground = target_foreground(target, name)
    if weight is not None:
        rgb[weight[..., 0] <= 0] //= 3
    contours, _ = cv2.findContours(
        foreground.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(rgb, contours, -1, TP, 1)
    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)


def preview_grid(cfg: RunConfig, rows: int = 4, cols: int = 6) -> np.ndarray:
    """Rows of [prepared image, ``cols - 1`` augmented draws] for up to ``rows`` images."""
    if rows < 1 or cols < 2:
        raise UserError("augment-preview needs at least 1 row and 2 columns")
    samples = read_dataset(cfg.data.data, cfg.data)
    picks = np.unique(np.linspace(0, len(samples) - 1, min(rows, len(samples))).round())
    side = cfg.input_size
    lines = []
    for row, index in enumerate(picks.astype(int)):
        item = prepare([samples[index]], cfg, cfg.resize_to)[0]
        draws = replace(cfg.train, batch_size=cols - 1, seed=cfg.train.seed + row)
        draw_cfg = replace(cfg, train=draws)  # each row its own draws of the augmentation
        batch = next(iter(make_dataset([item], draw_cfg, training=True)))
        images, targets = batch[0].numpy(), batch[1].numpy()
        weights = batch[2].numpy() if len(batch) > 2 else [None] * len(images)
        kind = cfg.data.target
        tiles = [tile(item.image, item.target, item.weight, side, kind)]
        tiles += [
            tile(i, t, w, side, kind) for i, t, w in zip(images, targets, weights, strict=True)
        ]
        lines.append(_join(tiles, axis=1))
    return _join(lines, axis=0)


def _join(parts: list[np.ndarray], axis: int) -> np.ndarray:
    gap_shape = list(parts[0].shape)
    gap_shape[axis] = GAP
    gap = np.full(gap_shape, 255, np.uint8)
    joined = [parts[0]]
    for part in parts[1:]:
        joined += [gap, part]
    return np.concatenate(joined, axis=axis)


def write_preview(
    cfg: RunConfig, out: Path, rows: int = 4, cols: int = 6, overwrite: bool = False
) -> Path:
    """Write the preview grid as a PNG, refusing to replace a file unless asked."""
    out = Path(out)
    check_new_outputs([out], "--out", overwrite)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out} must be a .png file")
    cfg.validate()
    write_png(out, preview_grid(cfg, rows, cols))
    return out
