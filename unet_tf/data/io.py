"""Reading and writing single image files, with errors a user can act on."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from unet_tf.atomic import atomic_path
from unet_tf.data import vendor
from unet_tf.data.checks import warn
from unet_tf.errors import UserError, first_line

# every image file a dataset folder or `predict` takes (vendor formats need their bioio plugin)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", *vendor.SUFFIXES)
MIN_SIDE = 2  # a single row, column or pixel is not a 2-D image


def natural_key(name: str) -> tuple:
    """Sort key that orders numbers by value: ``img2`` before ``img10``, as people count.

    Every listing of images (folders, CTC sequences, predict inputs, reports) sorts
    with it, so image 2 never lands after image 10 in a table. Text compares without
    case; the name itself breaks ties, so the order is total and repeatable.
    """
    parts = re.split(r"(\d+)", name)
    return (tuple(int(p) if p.isdigit() else p.casefold() for p in parts), name)


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


PixelSize = tuple[float, float]  # (y, x) in micrometres


def read_image(path: Path | str) -> np.ndarray:
    """Read a 2-D image as (H, W) or (H, W, C), keeping 8-bit, 16-bit or float values.

    See :func:`read_image_and_pixel_size`, which also returns the file's pixel size.
    """
    return read_image_and_pixel_size(path)[0]


def read_image_and_pixel_size(path: Path | str) -> tuple[np.ndarray, PixelSize | None]:
    """Read a 2-D image as (H, W) or (H, W, C) and its pixel size in µm, if the file has one.

    TIFFs (and OME-TIFFs, ImageJ hyperstacks) go through tifffile and are arranged by
    their axes (:func:`arrange_axes`), so every channel of a fluorescence image is
    kept (tifffile labels a 4-channel array RGBA; the fourth is kept all the same,
    ``--channels 0,1,2`` drops it); DRIVE's are LZW-compressed, which needs
    imagecodecs. Zeiss CZI, Leica LIF and Nikon ND2 files go through bioio
    (:mod:`unet_tf.data.vendor`) and the same axis rules. Everything else goes through
    Pillow: palette images (GIF) are
    expanded to their real grey or RGB values, and an alpha channel, which is
    transparency and not signal, is dropped. NaN and
    Inf pixels are replaced (see :func:`replace_non_finite`): they would poison
    training and spread through the network's per-image normalisation into an empty mask.
    """
    path = Path(path)
    pixel_size = None
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array, pixel_size = _read_tiff(path)
        elif vendor.is_vendor_file(path):
            array, pixel_size = read_vendor(path)
        else:
            array = _read_pillow(path)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, tifffile.TiffFileError) as exc:
        reason = first_line(exc)
        raise UserError(
            f"cannot read {path}: {reason}; replace or remove the file "
            "(it may be truncated or not an image)"
        ) from None
    return replace_non_finite(_check_2d(array, path), path), pixel_size


def _read_pillow(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        palette = img.mode == "P"
        if palette:
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("L" if img.mode == "1" else "RGB")
        array = np.array(img)
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa"):  # alpha is transparency, not signal
        array = array[..., :-1]
    if palette and is_grey(array):
        array = array[..., 0]
    return array


def read_vendor(path: Path, reader=None) -> tuple[np.ndarray, PixelSize | None]:
    """A CZI, LIF or ND2 file (or any file ``reader``, a bioio plugin's, opens) arranged
    by bioio's dimension letters, which are tifffile's (T, C, Z, Y, X, S)."""
    array, axes, pixel_size = vendor.read_bioio(path, reader)
    if pixel_size is not None and max(pixel_size) > MAX_PIXEL_UM:
        pixel_size = None
    return arrange_axes(array, axes, path), pixel_size


# tifffile's axis letters: channels (C, S = samples of a pixel, E = wavelength), the plane
# (Y, X), stacks a single image cannot hold (T, Z, ...), and Q / I when the file says nothing.
CHANNEL_AXES = "CSE"
UNKNOWN_AXES = "QI"
SMALL_AXIS = 4  # a bare 3-D array's axis of at most this length, beside larger ones, is channels


def _read_tiff(path: Path) -> tuple[np.ndarray, PixelSize | None]:
    with tifffile.TiffFile(path) as tif:
        if not tif.series or not len(tif.pages):  # a broken header: no page to read
            return np.empty(0, np.uint8), None
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
        pixel_size = tiff_pixel_size(tif)
    if array.size == 0:
        return array, None
    return arrange_axes(array, axes, path), pixel_size


def arrange_axes(array: np.ndarray, axes: str, path: Path | str) -> np.ndarray:
    """An array with tifffile axis letters as (H, W) or (H, W, C).

    Axes of length 1 are dropped; a channel axis (C, S or E) goes last. A time or depth
    axis (T, Z, ...) longer than 1 is an error: a single image is one 2-D plane. Without
    axis metadata (Q or I), a bare 3-D array follows :func:`guess_channel_axis`.
    """
    if len(axes) != array.ndim:
        raise UserError(f"{path} has shape {array.shape} but axes {axes!r}; re-save the file")
    keep = [i for i, a in enumerate(axes) if array.shape[i] > 1 or a in "YX"]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if set(axes) & set(UNKNOWN_AXES):
        if not set(axes) <= set(UNKNOWN_AXES + "YX") or array.ndim > 3:
            raise UserError(
                f"{path} has shape {array.shape} with axes {axes}; a single image must be "
                "2-D plus channels: save it with ImageJ or OME axes, or one file per plane"
            )
        return guess_channel_axis(array, path)
    stacks = [a for a in axes if a not in CHANNEL_AXES + "YX"]
    channels = [a for a in axes if a in CHANNEL_AXES]
    if stacks or len(channels) > 1 or not set("YX") <= set(axes):
        found = ", ".join(f"{a}={n}" for a, n in zip(axes, array.shape, strict=True))
        raise UserError(
            f"{path} is a stack with axes {axes} ({found}); a single image must be 2-D "
            "plus channels (YX or YXC): save one plane per file (Fiji: Image > Stacks > "
            "Tools > Make Substack), or read a time series with --format video"
        )
    order = [axes.index("Y"), axes.index("X")] + [axes.index(c) for c in channels]
    return np.transpose(array, order)


def guess_channel_axis(array: np.ndarray, path: Path | str) -> np.ndarray:
    """A 3-D array without axis metadata as (H, W, C), by the sizes of its axes.

    The rule: an axis of at most 4 (``SMALL_AXIS``) in front of two larger ones is
    channel-first, (C, Y, X) as Fiji saves a plain multi-channel TIFF; one at the end,
    behind two larger ones, is channels-last. Any other shape could be channels or a
    stack, and guessing wrong would silently mix the planes, so it is an error.
    """
    if array.ndim < 3:
        return array
    first, *_, last = array.shape
    if first <= SMALL_AXIS < min(array.shape[1:]):
        return np.moveaxis(array, 0, -1)
    if last <= SMALL_AXIS < min(array.shape[:-1]):
        return array
    raise UserError(
        f"{path} has shape {array.shape} and no axis metadata, so its channels are ambiguous; "
        "save it from Fiji or napari (ImageJ or OME-TIFF axes), or as (Y, X, C) with at most "
        f"{SMALL_AXIS} channels"
    )


# Micrometres per unit, for the units microscopy files write (ImageJ spells µm many ways).
UNIT_UM = {
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "\\u00b5m": 1.0,
    "nm": 1e-3,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "inch": 25400.0,
}
# A TIFF resolution coarser than this is a screen or print default (72, 96 or 300 dpi
# from an image editor), not a microscope's calibration.
MAX_PIXEL_UM = 50.0


def tiff_pixel_size(tif: tifffile.TiffFile) -> PixelSize | None:
    """(y, x) pixel size in µm from OME (PhysicalSizeY/X), ImageJ or the resolution tags."""
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size:
            return size
    page = tif.pages[0]
    try:
        x_res, y_res = page.get_resolution()
    except (AttributeError, ValueError, ZeroDivisionError):
        return None
    if not (x_res > 0 and y_res > 0):
        return None
    if tif.is_imagej:
        unit = str((tif.imagej_metadata or {}).get("unit", "")).strip().lower()
    else:
        unit = {2: "inch", 3: "cm"}.get(int(page.resolutionunit), "")
    scale = UNIT_UM.get(unit)
    if scale is None:
        return None
    size = (scale / y_res, scale / x_res)
    return size if max(size) <= MAX_PIXEL_UM else None


def _ome_pixel_size(xml: str) -> PixelSize | None:
    """PhysicalSizeY / X of the first OME Pixels element, converted to µm."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels")), None)
    if pixels is None:
        return None
    sizes = []
    for axis in ("Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        scale = UNIT_UM.get(pixels.get(f"PhysicalSize{axis}Unit", "µm").lower())
        if value is None or scale is None or float(value) <= 0:
            return None
        sizes.append(float(value) * scale)
    return sizes[0], sizes[1]


def replace_non_finite(image: np.ndarray, name: Path | str) -> np.ndarray:
    """Replace NaN / Inf pixels by the median of the finite ones, with a warning.

    A few non-finite pixels (a float TIFF with a masked-out patch) should not cost
    the user the image; an image without a single finite value cannot be used.
    """
    if not np.issubdtype(image.dtype, np.floating):
        return image
    finite = np.isfinite(image)
    if finite.all():
        return image
    if not finite.any():
        raise UserError(f"{name} holds only NaN or Inf values; replace or remove the file")
    median = float(np.median(image[finite]))
    bad_pixels = int(np.count_nonzero(~finite if image.ndim == 2 else ~finite.all(axis=-1)))
    warn(
        f"{name}: {bad_pixels} NaN or Inf pixel(s) replaced by the image's median {median:g}; "
        "fix the file to silence this warning"
    )
    return np.where(finite, image, np.asarray(median, image.dtype))


def is_grey(rgb: np.ndarray) -> bool:
    """R = G = B everywhere: grey stored as colour (GIF palettes, DSB PNGs), one channel."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _check_2d(array: np.ndarray, path: Path) -> np.ndarray:
    """Refuse empty or tiny images; an (H, W) or (H, W, C) array passes."""
    if array.size == 0:  # tifffile returns an empty array for a TIFF with a broken header
        raise UserError(
            f"cannot read {path}: it holds no image data; replace or remove the file "
            "(it may be truncated or corrupt)"
        )
    if array.ndim not in (2, 3):
        raise UserError(
            f"{path} has shape {array.shape}; expected a 2-D image (H, W) or (H, W, C). "
            "Split stacks and volumes into one file per 2-D image."
        )
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise UserError(
            f"{path} is {width}x{height} px, too small to segment; use images of at least "
            f"{MIN_SIDE}x{MIN_SIDE} px or remove the file"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array


def to_channels(image: np.ndarray) -> np.ndarray:
    """Return (H, W, C): grey gets a channel axis, every channel of the file is kept."""
    return image[..., None] if image.ndim == 2 else image


def select_channels(
    image: np.ndarray, channels: list[int] | None, name: Path | str = "image"
) -> np.ndarray:
    """The chosen channels of an (H, W[, C]) image as (H, W, len(channels)), in that order."""
    image = to_channels(image)
    if channels is None:
        return image
    if max(channels) >= image.shape[-1]:
        raise UserError(
            f"{name} has {image.shape[-1]} channel(s), numbered 0 to {image.shape[-1] - 1}, "
            f"but --channels asks for {','.join(map(str, channels))}; pick channels it has"
        )
    return image[..., channels]


def to_label(mask: np.ndarray, path: Path | str = "") -> np.ndarray:
    """Collapse a mask to (H, W): colour masks count a pixel by its largest channel."""
    if mask.ndim == 3:
        mask = mask[..., :3].max(axis=-1) if mask.shape[-1] >= 3 else mask[..., 0]
    if not np.issubdtype(mask.dtype, np.number):
        raise UserError(f"mask {path} has unsupported type {mask.dtype}")
    return mask


def write_png(path: Path, array: np.ndarray) -> None:
    """Write uint8 or uint16 grey / uint8 RGB as PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
