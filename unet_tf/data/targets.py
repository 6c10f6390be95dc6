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
  ``--border-width`` px (2 unless given) along the inside edge of *every* cell (not only where cells
  touch), as in the DSB 2018 three-class U-Nets. Drawing it around every cell keeps
  the class local (a pixel's class depends on its neighbourhood, not on a cell
  further away) and makes interiors of touching cells separate components, which
  become the watershed's markers. The image's own border is not a cell border.
- ``distance``: 2 channels, each its own sigmoid (not one-hot): the foreground, and
  every cell's Euclidean distance to its edge divided by that cell's largest, so each
  cell peaks at 1 whatever its size (the distance-map targets that lead the CTC on
  DIC-HeLa). Touching cells are cut apart by a one-pixel gap first, so the map falls
  to 0 between them and its maxima are one per cell: the watershed's seeds. The map
  stays linear in the distance (no power): a power below 1 would widen each peak into
  a plateau, where seeds are less sharply placed.
- ``contact``: ``distance``'s two channels and a third sigmoid, the cells' contacts:
  every pixel, cell or background, with two different cells within ``--border-width``
  px (:data:`CONTACT_BAND` unless given; the "touching borders" of the DSB 2018
  winners). The watershed damps the distance map where a contact is predicted, so two
  small touching nuclei whose predicted maps blur into one peak are cut along it.

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

BOUNDARY_BAND = 2  # px: the boundary target's cell-border band (DSB 2018's three-class U-Nets)
# The contact band's radius, chosen on validation images: on three DSB 2018 splits at
# 10 minutes (docs/data.md) the cross-fitted validation PQ rose from 2 px (the boundary
# target's band) to 3 px and again to 4 px on every split; 5 px scored lower on two
# splits of three.
CONTACT_BAND = 4


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


def _disk(radius: int) -> np.ndarray:
    """The Euclidean disk footprint of ``radius`` px, for the border and contact bands."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


def boundary_target(labels: np.ndarray, border_width: int = BOUNDARY_BAND) -> np.ndarray:
    """(H, W, 3) one-hot background / interior / border of integer cell ``labels``.

    A cell pixel is border when a pixel of another label (background or another cell)
    lies within ``border_width`` px (Euclidean disk), so the band is ``border_width`` px
    wide along every cell's edge. The image's edge is not a border (``mode="nearest"``).
    """
    labels = np.asarray(labels)
    disk = _disk(border_width)
    high = ndimage.maximum_filter(labels, footprint=disk, mode="nearest")
    low = ndimage.minimum_filter(labels, footprint=disk, mode="nearest")
    classes = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    classes[(labels > 0) & (high != low)] = BORDER
    return np.eye(3, dtype=np.float32)[classes]


def distance_target(labels: np.ndarray, border_width: int | None = None) -> np.ndarray:
    """(H, W, 2) float32: the cells' foreground, and their per-cell normalised distance map.

    Where two cells touch, the lower-numbered one gives up its contact pixels (a gap of
    one pixel, 4-connected), so each cell's distance transform falls to about 1 px at the
    contact and not only at the background. Each cell's distances are divided by its own
    maximum. The image's edge is not an edge of a cell. ``border_width`` is unused: the
    signature is the registry's. Vectorised: one distance transform for all cells.
    """
    labels = np.asarray(labels)
    cells = labels > 0
    cross = ndimage.generate_binary_structure(2, 1)
    gap = cells & (ndimage.maximum_filter(labels, footprint=cross, mode="nearest") > labels)
    distance = ndimage.distance_transform_edt(cells & ~gap)
    peak = np.zeros(int(labels.max()) + 1, np.float64)  # each label's largest distance
    np.maximum.at(peak, labels[cells], distance[cells])
    scale = peak[labels]
    normalised = np.divide(distance, scale, out=np.zeros_like(distance), where=scale > 0)
    return np.stack([cells, normalised], axis=-1).astype(np.float32)


def contact_target(labels: np.ndarray, border_width: int = CONTACT_BAND) -> np.ndarray:
    """(H, W, 3) float32: :func:`distance_target`'s channels and the cells' contacts.

    A pixel is a contact when the disk of radius ``border_width`` around it holds two
    different cells (its largest and smallest non-zero labels differ), so the band
    covers the gap between touching or nearly touching cells and ``border_width`` px
    of each; it is empty for a cell with no neighbour near.
    """
    labels = np.asarray(labels, np.int64)  # room for a label past the largest
    disk = _disk(border_width)
    none = int(labels.max()) + 1  # larger than every label: background never is the minimum
    high = ndimage.maximum_filter(labels, footprint=disk, mode="nearest")
    low = ndimage.minimum_filter(np.where(labels > 0, labels, none), footprint=disk, mode="nearest")
    contact = (low < none) & (high != low)
    return np.concatenate([distance_target(labels), contact[..., None]], axis=-1).astype(np.float32)


# The channel names that code looks up: the watershed floods the distance map and damps
# it at contacts; the loss scores every channel but the distance map as a mask.
DISTANCE_CHANNEL = "distance"
CONTACT_CHANNEL = "contact"


@dataclass(frozen=True)
class Target:
    """One kind of training target: its output channels and how it is built from cells.

    ``build`` is None for the pixel mask (:func:`make_target`); separating targets are
    built from instance labels and are scored on their foreground. ``activation`` is the
    network head the target needs: ``sigmoid`` for independent channels (channel 0 the
    foreground), ``softmax`` for one-hot classes, ``auto`` for --classes to decide.
    ``channel_names`` say what each output channel is, for people and for exports that
    describe their outputs (bioimage.io); none for the pixel mask, whose channels
    ``--classes`` decides. ``band`` is the width in px of the target's band (boundary,
    contact) when ``--border-width`` is not given; None for the targets without one.
    """

    channel_names: tuple[str, ...]
    build: Callable[[np.ndarray, int | None], np.ndarray] | None
    activation: str = "auto"
    band: int | None = None

    @property
    def channels(self) -> int | None:
        """Output channels the target trains; None: --classes decides."""
        return len(self.channel_names) or None

    @property
    def separating(self) -> bool:
        return self.build is not None

    @property
    def mask_channels(self) -> tuple[int, ...]:
        """The channels that are masks, every one but the distance map: the foreground
        loss scores them (``training.losses.get_loss``) and the plan names them."""
        return tuple(c for c, name in enumerate(self.channel_names) if name != DISTANCE_CHANNEL)


TARGETS: Registry[Target] = Registry("target", "--target")
TARGETS.add("binary", Target((), None), "the foreground mask (or one-hot --classes)")
TARGETS.add(
    "boundary",
    Target(("background", "interior", "border"), boundary_target, "softmax", BOUNDARY_BAND),
    "3 classes (background, interior, a --border-width px band inside every cell's edge)",
)
TARGETS.add(
    "distance",
    Target(("foreground", DISTANCE_CHANNEL), distance_target, "sigmoid"),
    "2 sigmoid channels: the foreground, and each cell's distance map scaled to peak at 1",
)
TARGETS.add(
    "contact",
    Target(
        ("foreground", DISTANCE_CHANNEL, CONTACT_CHANNEL), contact_target, "sigmoid", CONTACT_BAND
    ),
    "distance's 2 channels and a 3rd: where two cells come within --border-width px",
)


# What `--target auto` trains when the masks label cells one by one. Measured at the
# same budget (docs/data.md): CTC SEG 0.509 vs the boundary target's 0.434 on held-out
# HeLa frames, and cross-fitted 0.949 vs 0.926 on U373's validation frames.
INSTANCE_DEFAULT = "distance"
# Objects narrower than this (median equivalent diameter, px) get the contact target.
# Measured at 10 minutes (docs/data.md): DSB 2018's ~19 px nuclei merged less with it
# on all three splits tried (109 -> 56, 157 -> 115, 100 -> 79), with a higher AP@0.5;
# U373's ~70 px and HeLa's ~113 px cells gained nothing, and one HeLa seed of three
# lost SEG.
SMALL_OBJECTS = 40.0
SMALL_OBJECT_TARGET = "contact"


def default_target(
    instances: bool,
    num_classes: int = 1,
    border_weights: bool = False,
    object_diameter: float | None = None,
) -> str:
    """What ``--target auto`` trains: the one rule, shared by ``fit`` and the plan.

    Masks that label cells one by one get :data:`INSTANCE_DEFAULT`, or
    :data:`SMALL_OBJECT_TARGET` when their objects are measured (``object_diameter``,
    the plan's fingerprint) narrower than :data:`SMALL_OBJECTS` px: a network's
    distance map blurs the two peaks of small touching nuclei into one, and the
    contact channel marks the line between them. Pixel masks, ``--classes`` and the
    U-Net border weights (a recipe of their own) keep ``binary``.
    """
    if not instances or num_classes != 1 or border_weights:
        return "binary"
    if object_diameter is not None and 0 < object_diameter < SMALL_OBJECTS:
        return SMALL_OBJECT_TARGET
    return INSTANCE_DEFAULT


def is_separating(target: str) -> bool:
    """Whether ``target`` (a config's ``data.target``) teaches cells apart."""
    return target in TARGETS and TARGETS.get(target).separating


def multilabel(target: str) -> bool:
    """Whether ``target``'s channels are independent sigmoids, channel 0 the foreground."""
    if target not in TARGETS:
        return False
    spec = TARGETS.get(target)
    return spec.activation == "sigmoid" and (spec.channels or 1) > 1


def target_foreground(target: np.ndarray, name: str) -> np.ndarray:
    """(H, W) bool foreground of a built training target of kind ``name``.

    The one reading of a target array: channel 0 of a sigmoid target (binary, or
    ``distance``'s foreground channel), and anything but class 0 of a one-hot softmax
    target (``--classes``, ``boundary``). Warnings, foreground-centred patches and the
    augmentation preview all use it, so none mistakes a distance map for a class.
    """
    if target.shape[-1] == 1 or multilabel(name):
        return target[..., 0] > 0.5
    return target[..., 0] < 0.5


def scored_classes(num_classes: int, target: str) -> int:
    """Classes pixel scores compare: 1 (the foreground) for separating targets."""
    return 1 if is_separating(target) else num_classes


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label image, exact for any label value."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    return labels[np.ix_(rows, cols)]


def band_width(target: str, border_width: int | None = None) -> int | None:
    """The band ``target`` trains: ``border_width`` when given, else the target's own.

    None for a target without a band (``distance``, ``binary``). ``fit`` records the
    result in config.yaml (:func:`unet_tf.training.resolve.resolve_target`), so a run's
    config says the width that trained and ``--no-plan`` trains the plan's band.
    """
    if target not in TARGETS or TARGETS.get(target).band is None:
        return border_width
    return TARGETS.get(target).band if border_width is None else border_width


def instance_target(
    mask: np.ndarray,
    target: str,
    border_width: int | None = None,
    threshold: float = 0.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A separating target of a stored mask, at ``size`` if given.

    The cells are resized (nearest neighbour) before the target is built, so a border
    band is ``border_width`` px (:func:`band_width`) at the size the network trains on,
    and no band is thinned away or broken by resizing a finished target.
    """
    labels = instance_labels(mask, threshold)
    if size is not None:
        labels = resize_labels(labels, size)
    return TARGETS.get(target).build(labels, band_width(target, border_width))


def _key(mask: np.ndarray, *settings) -> str:
    digest = hashlib.sha1("|".join(map(str, (CACHE_VERSION, *settings))).encode())
    digest.update(f"{mask.dtype}{mask.shape}".encode())
    digest.update(np.ascontiguousarray(mask).tobytes())
    return digest.hexdigest()


def cached_instance_target(
    mask: np.ndarray,
    target: str,
    border_width: int | None = None,
    threshold: float = 0.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """:func:`instance_target`, from the disk cache when it is there."""
    key = _key(mask, target, band_width(target, border_width), threshold, size)
    path = cache_dir() / "targets" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    built = instance_target(mask, target, border_width, threshold, size)
    # A read-only cache only costs time; atomic, so a parallel run never reads half a file.
    with contextlib.suppress(OSError), atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, built)
    return built
