"""Overlap-tile prediction: images of any size at full resolution, in bounded memory.

The U-Net paper (Ronneberger et al. 2015) segments large images tile by tile and
mirrors the image at its border, so that pixels there still see context. Here the
tiles overlap by a fraction of their side and are blended with a weight window:
a CNN with zero-padded ('same') convolutions is least reliable at a tile's edge,
and nnU-Net's Gaussian window lets the centre of a neighbouring tile decide there.

Tiles are cut through mirrored index maps, so the image is never padded or copied
as a whole: memory holds the image, two float64 accumulators of its size and one
batch of tiles, whatever the image size. Accumulating in float64 also makes the
blend exact: a network that outputs a constant gets that constant back bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from unet_tf.runtime.progress import progress

BLENDS = ("gaussian", "linear", "none")
GAUSSIAN_SIGMA = 1 / 8  # of the tile side, as in nnU-Net
Forward = Callable[[np.ndarray], np.ndarray]


def mirror_indices(start: int, length: int, size: int) -> np.ndarray:
    """Indices ``start .. start + length - 1`` folded into ``[0, size)`` by mirroring.

    The edge pixel is not repeated (numpy's ``reflect``): -1 maps to 1, ``size`` to
    ``size - 2``. Any distance outside the image folds back, so tiles larger than a
    small image still get valid pixels.
    """
    idx = np.arange(start, start + length)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= size, period - idx, idx)


def tile_starts(size: int, tile: int, stride: int, margin: int) -> list[int]:
    """Tile origins along one axis (negative ones reach into the mirrored border).

    The tiles cover ``[-margin, size + margin)``, spread evenly so that no step
    exceeds ``stride``; an image no larger than one tile gets one centred tile.
    """
    span = size + 2 * margin
    if span <= tile:
        return [-((tile - size) // 2)]
    count = math.ceil((span - tile) / stride) + 1
    return [round(s) - margin for s in np.linspace(0, span - tile, count)]


def blend_window(tile: int, overlap_px: int, blend: str) -> np.ndarray:
    """(tile, tile) float64 weights: Gaussian, linear ramps over the overlap, or flat."""
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; choose one of {BLENDS}")
    i = np.arange(tile, dtype=np.float64)
    if blend == "gaussian":
        sigma = tile * GAUSSIAN_SIGMA
        ramp = np.exp(-0.5 * ((i - (tile - 1) / 2) / sigma) ** 2)
    elif blend == "linear" and overlap_px > 0:
        ramp = np.minimum(1.0, np.minimum(i + 0.5, tile - 0.5 - i) / overlap_px)
    else:
        ramp = np.ones(tile)
    # A floor keeps every pixel's total weight positive, even in a tile's far corner.
    return np.maximum(np.outer(ramp, ramp), 1e-8)


def cut_tile(image: np.ndarray, y: int, x: int, tile: int) -> np.ndarray:
    """The ``tile`` x ``tile`` window at (y, x), mirrored where it leaves the image."""
    h, w = image.shape[:2]
    if min(y, x) >= 0 and y + tile <= h and x + tile <= w:
        return image[y : y + tile, x : x + tile]
    rows = mirror_indices(y, tile, h)
    cols = mirror_indices(x, tile, w)
    return image[rows[:, None], cols[None, :]]


def predict_tiled(
    forward: Forward,
    image: np.ndarray,
    tile: int,
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
) -> np.ndarray:
    """Blend ``forward`` over overlapping tiles of an (H, W, C) image into (H, W, K).

    ``forward`` maps a float32 (B, tile, tile, C) batch to (B, tile, tile, K)
    probabilities; it never sees more than ``batch_size`` tiles at once. The border
    is mirror-padded by half the overlap, so edge pixels are not at a tile's edge.
    When progress bars are on (:mod:`unet_tf.runtime.progress`), the batches show one.
    """
    if tile < 1 or batch_size < 1:
        raise ValueError("tile and batch_size must be positive")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    h, w = image.shape[:2]
    stride = max(1, round(tile * (1.0 - overlap)))
    margin = (tile - stride) // 2
    window = blend_window(tile, tile - stride, blend)
    corners = [
        (y, x)
        for y in tile_starts(h, tile, stride, margin)
        for x in tile_starts(w, tile, stride, margin)
    ]
    total: np.ndarray | None = None
    weight = np.zeros((h, w), np.float64)
    batches = range(0, len(corners), batch_size)
    # A bar only for images of several batches; it is cleared when the image is done.
    if len(batches) > 1:
        batches = progress(batches, desc="tiles", unit="batch", leave=False)
    for first in batches:
        chunk = corners[first : first + batch_size]
        batch = np.stack([cut_tile(image, y, x, tile) for y, x in chunk]).astype(np.float32)
        probs = np.asarray(forward(batch))
        if total is None:
            total = np.zeros((h, w, probs.shape[-1]), np.float64)
        for (y, x), p in zip(chunk, probs, strict=True):
            _accumulate(total, weight, p, window, y, x)
    total /= weight[..., None]
    return total.astype(np.float32)


def _accumulate(
    total: np.ndarray, weight: np.ndarray, probs: np.ndarray, window: np.ndarray, y: int, x: int
) -> None:
    """Add one tile's weighted prediction where it overlaps the image."""
    h, w = weight.shape
    tile = window.shape[0]
    y0, y1, x0, x1 = max(y, 0), min(y + tile, h), max(x, 0), min(x + tile, w)
    win = window[y0 - y : y1 - y, x0 - x : x1 - x]
    total[y0:y1, x0:x1] += probs[y0 - y : y1 - y, x0 - x : x1 - x] * win[..., None]
    weight[y0:y1, x0:x1] += win
