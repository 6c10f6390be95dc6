"""What the network learns from a mask, and the labels a prediction is scored against.

One home for the mask -> target -> labels conversion, so training, ``evaluate``,
``predict`` and reports all read a mask the same way (``--mask-threshold``,
``--classes``, ``--target``).

Pixel masks teach a U-Net the foreground, and on a frame of touching HeLa cells that
is one big object: the thin background between cells is a few pixels of the image
and costs the loss almost nothing. The separating targets (:data:`TARGETS`) are built
from the cells' instance labels instead, so the network learns where one cell ends
and the next begins, and ``--instances`` turns its output back into cells
(:mod:`unet_tf.inference.postprocess`):

- ``binary``: the foreground mask (or one-hot ``--classes``), as always.
- ``boundary``: 3 classes, one-hot: background, cell interior, and a band of
  ``--border-width`` px along the inside edge of *every* cell (not only where cells
  touch), as in the DSB 2018 three-class U-Nets. Drawing it around every cell keeps
  the class local (a pixel's class depends on its neighbourhood, not on a cell
  further away) and makes interiors of touching cells separate components, which
  become the watershed's markers. The image's own border is not a cell border.

Instance labels are the mask's own (CTC ``man_seg``, DSB label images: integer masks
wider than 8 bits with several labels), or the 4-connected components of the
foreground (the objects :func:`unet_tf.evaluation.objects.reference_instances`
scores, so the target teaches the objects that SEG counts). Targets are cached on
disk like the border weights, keyed by the mask's content and the settings.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from unet_tf.atomic import atomic_path
from unet_tf.data.border_weights import cache_dir, instance_labels
from unet_tf.errors import UserError
from unet_tf.registry import Registry

CACHE_VERSION = "1"
BACKGROUND, INTERIOR, BORDER = 0, 1, 2


def make_target(mask: np.ndarray, num_classes: int, threshold: float, path: str = "") -> np.ndarray:
    """Binary foreground (value > threshold) or one-hot classes (values 0..N-1)."""
    if num_classes == 1:
        return (mask > threshold).astype(np.float32)[..., None]
    values = mask.astype(np.int64)
    if values.min() < 0 or values.max() >= num_classes:
        raise UserError(
            f"mask {path} has values {int(values.min())}..{int(values.max())}, but "
            f"--classes {num_classes} needs class indices 0..{num_classes - 1}"
        )
    return np.eye(num_classes, dtype=np.float32)[values]


def truth_labels(
    mask: np.ndarray, num_classes: int, threshold: float, path: str = ""
) -> np.ndarray:
    """(H, W) uint8 ground-truth labels: 0/1 foreground, or the class index per pixel.

    The same labels ``to_mask`` makes of a prediction, so the two compare pixel by pixel.
    Runs with a separating target are scored on the foreground: pass
    :func:`scored_classes` as ``num_classes``.
    """
    target = make_target(mask, num_classes, threshold, path)
    if num_classes == 1:
        return (target[..., 0] > 0.5).astype(np.uint8)
    return np.argmax(target, axis=-1).astype(np.uint8)


def has_instances(mask: np.ndarray) -> bool:
    """Whether a mask stores one label per cell (CTC, DSB, label TIFFs), not a pixel mask.

    The rule of :func:`unet_tf.evaluation.objects.reference_instances`: an integer mask
    wider than 8 bits with more than two distinct values.
    """
    wide = np.issubdtype(mask.dtype, np.integer) and mask.dtype.itemsize > 1
    return bool(wide and len(np.unique(mask)) > 2)


def boundary_target(labels: np.ndarray, border_width: int = 2) -> np.ndarray:
    """(H, W, 3) one-hot background / interior / border of integer cell ``labels``.

    A cell pixel is border when a pixel of another label (background or another cell)
    lies within ``border_width`` px (Euclidean disk), so the band is ``border_width`` px
    wide along every cell's edge. The image's edge is not a border (``mode="nearest"``).
    """
    labels = np.asarray(labels)
    r = border_width
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= r**2
    high = ndimage.maximum_filter(labels, footprint=disk, mode="nearest")
    low = ndimage.minimum_filter(labels, footprint=disk, mode="nearest")
    classes = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    classes[(labels > 0) & (high != low)] = BORDER
    return np.eye(3, dtype=np.float32)[classes]


@dataclass(frozen=True)
class Target:
    """One kind of training target: its output channels and how it is built from cells.

    ``build`` is None for the pixel mask (:func:`make_target`); separating targets are
    built from instance labels and are scored on their foreground.
    """

    channels: int | None  # None: --classes decides
    build: Callable[[np.ndarray, int], np.ndarray] | None

    @property
    def separating(self) -> bool:
        return self.build is not None


TARGETS: Registry[Target] = Registry("target", "--target")
TARGETS.add("binary", Target(None, None), "the foreground mask (or one-hot --classes)")
TARGETS.add(
    "boundary",
    Target(3, boundary_target),
    "3 classes (background, interior, a --border-width px band inside every cell's edge)",
)


def is_separating(target: str) -> bool:
    """Whether ``target`` (a config's ``data.target``) teaches cells apart."""
    return target in TARGETS and TARGETS.get(target).separating


def scored_classes(num_classes: int, target: str) -> int:
    """Classes pixel scores compare: 1 (the foreground) for separating targets."""
    return 1 if is_separating(target) else num_classes


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label image, exact for any label value."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    return labels[np.ix_(rows, cols)]


def instance_target(
    mask: np.ndarray,
    target: str,
    border_width: int = 2,
    threshold: float = 0.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A separating target of a stored mask, at ``size`` if given.

    The cells are resized (nearest neighbour) before the target is built, so a border
    band is ``border_width`` px at the size the network trains on, and no band is
    thinned away or broken by resizing a finished target.
    """
    labels = instance_labels(mask, threshold)
    if size is not None:
        labels = resize_labels(labels, size)
    return TARGETS.get(target).build(labels, border_width)


def _key(mask: np.ndarray, *settings) -> str:
    digest = hashlib.sha1("|".join(map(str, (CACHE_VERSION, *settings))).encode())
    digest.update(f"{mask.dtype}{mask.shape}".encode())
    digest.update(np.ascontiguousarray(mask).tobytes())
    return digest.hexdigest()


def cached_instance_target(
    mask: np.ndarray,
    target: str,
    border_width: int = 2,
    threshold: float = 0.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """:func:`instance_target`, from the disk cache when it is there."""
    key = _key(mask, target, border_width, threshold, size)
    path = cache_dir() / "targets" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    built = instance_target(mask, target, border_width, threshold, size)
    # A read-only cache only costs time; atomic, so a parallel run never reads half a file.
    with contextlib.suppress(OSError), atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, built)
    return built
