"""The U-Net paper's weight map, which makes the network learn the gaps between cells.

Ronneberger et al. (2015), eq. 2:

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

``w_c`` balances the class frequencies (each class gets half of the total weight),
and ``d1``, ``d2`` are the distances to the nearest and second-nearest cell, with
w0 = 10 and sigma = 5 px. The border term is added on background pixels only, as in
the paper's figure 3d: it is the thin background between touching cells that must
not be lost, while cell interiors keep their class weight.

Cells are instance labels when the mask stores them (Cell Tracking Challenge uint16
masks, or any mask wider than 8 bits with several labels), and otherwise the
4-connected components of the binary foreground, so a one-pixel background line
still separates two cells.

Maps are cached on disk, keyed by the mask's content, because computing one
distance transform per cell takes a while on images with hundreds of cells.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from unet_tf.atomic import atomic_path
from unet_tf.data.sample import Sample

W0 = 10.0
SIGMA = 5.0
NEGLIGIBLE = 1e-4  # border terms below this are dropped (distances are computed nearby only)
CACHE_VERSION = "1"


def instance_labels(mask: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Integer cell labels: stored instance labels, or connected components of the foreground."""
    foreground = mask > threshold
    values = np.unique(mask[foreground])
    if mask.dtype.kind in "iu" and mask.dtype.itemsize > 1 and len(values) > 1:
        return np.where(foreground, mask, 0).astype(np.int64)
    labels, _ = ndimage.label(foreground)
    return labels


def class_balance(foreground: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """w_c: foreground and background pixels (inside the FOV) get equal total weight."""
    inside = np.ones_like(foreground, bool) if fov is None else fov.astype(bool)
    n = int(inside.sum())
    n_fg = int((foreground & inside).sum())
    n_bg = n - n_fg
    w_fg = n / (2.0 * n_fg) if n_fg else 0.0
    w_bg = n / (2.0 * n_bg) if n_bg else 0.0
    if not n_fg or not n_bg:  # one class only: nothing to balance
        w_fg = w_bg = 1.0
    return np.where(foreground, w_fg, w_bg).astype(np.float32)


def two_nearest_distances(labels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the distances to the nearest and second-nearest labelled cell.

    Distances beyond ``reach`` are left infinite: each cell's distance transform is
    computed only in its bounding box grown by ``reach``, which keeps the cost
    proportional to the cells' size rather than (cells x image).
    """
    d1 = np.full(labels.shape, np.inf, np.float32)
    d2 = np.full(labels.shape, np.inf, np.float32)
    margin = math.ceil(reach)
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        window = tuple(
            slice(max(s.start - margin, 0), min(s.stop + margin, n))
            for s, n in zip(box, labels.shape, strict=True)
        )
        d = ndimage.distance_transform_edt(labels[window] != label).astype(np.float32)
        near1, near2 = d1[window], d2[window]  # views: updated in place
        closer = d < near1
        near2[...] = np.where(closer, near1, np.minimum(near2, d))
        near1[...] = np.where(closer, d, near1)
    return d1, d2


def border_weights(
    labels: np.ndarray, fov: np.ndarray | None = None, w0: float = W0, sigma: float = SIGMA
) -> np.ndarray:
    """The weight map w = w_c + w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) for integer ``labels``."""
    foreground = labels > 0
    weights = class_balance(foreground, fov)
    # Beyond this reach, w0 * exp(-reach^2 / (2 sigma^2)) < NEGLIGIBLE.
    reach = sigma * math.sqrt(2.0 * math.log(max(w0, NEGLIGIBLE) / NEGLIGIBLE))
    d1, d2 = two_nearest_distances(labels, reach)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))  # 0 where d2 is infinite
    border[foreground] = 0.0
    return (weights + border).astype(np.float32)


def cache_dir() -> Path:
    """``$UNET_TF_CACHE``, else ``$XDG_CACHE_HOME/unet-tf`` (``~/.cache/unet-tf``)."""
    if os.environ.get("UNET_TF_CACHE"):
        return Path(os.environ["UNET_TF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "unet-tf"


def _key(mask: np.ndarray, fov: np.ndarray | None, threshold: float) -> str:
    digest = hashlib.sha1(f"{CACHE_VERSION}|{W0}|{SIGMA}|{threshold}".encode())
    for array in (mask, fov):
        if array is not None:
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cached_border_weights(
    mask: np.ndarray, fov: np.ndarray | None = None, threshold: float = 0.0
) -> np.ndarray:
    """The border weight map of a stored mask, from the disk cache when it is there."""
    path = cache_dir() / "border-weights" / f"{_key(mask, fov, threshold)}.npy"
    if path.exists():
        return np.load(path)
    weights = border_weights(instance_labels(mask, threshold), fov)
    # A read-only cache only costs time; atomic, so a parallel run never reads half a file.
    with contextlib.suppress(OSError), atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, weights)
    return weights


def add_border_weights(samples: list[Sample], threshold: float = 0.0) -> None:
    """Set ``Sample.weight`` of every annotated sample to its border weight map."""
    for sample in samples:
        if sample.mask is not None:
            sample.weight = cached_border_weights(sample.mask, sample.fov, threshold)
