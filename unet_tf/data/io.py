"""Reading and writing single image files, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from unet_tf.atomic import atomic_path
from unet_tf.data.checks import warn
from unet_tf.errors import UserError, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp")
MIN_SIDE = 2  # a single row, column or pixel is not a 2-D image


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def read_image(path: Path | str) -> np.ndarray:
    """Read a 2-D image as (H, W) or (H, W, C), keeping 8-bit, 16-bit or float values.

    TIFFs go through tifffile (DRIVE's are LZW-compressed, which needs imagecodecs);
    everything else through Pillow. Palette images (GIF) are expanded to their real
    grey or RGB values, never left as palette indices. NaN and Inf pixels are
    replaced (see :func:`replace_non_finite`): they would poison training and
    spread through the network's per-image normalisation into an empty mask.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array = tifffile.imread(path)
        else:
            with Image.open(path) as img:
                palette = img.mode == "P"
                if palette:
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                    img = img.convert("L" if img.mode == "1" else "RGB")
                array = np.array(img)
                if palette and _is_grey(array):
                    array = array[..., 0]
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, tifffile.TiffFileError) as exc:
        reason = first_line(exc)
        raise UserError(
            f"cannot read {path}: {reason}; replace or remove the file "
            "(it may be truncated or not an image)"
        ) from None
    return replace_non_finite(_squeeze_to_2d(array, path), path)


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


def _is_grey(rgb: np.ndarray) -> bool:
    """A palette of greys (GIF masks) should read as one channel, not three."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _squeeze_to_2d(array: np.ndarray, path: Path) -> np.ndarray:
    if array.size == 0:  # tifffile returns an empty array for a TIFF with a broken header
        raise UserError(
            f"cannot read {path}: it holds no image data; replace or remove the file "
            "(it may be truncated or corrupt)"
        )
    height, width = _spatial_size(array)
    if min(height, width) < MIN_SIDE:
        raise UserError(
            f"{path} is {width}x{height} px, too small to segment; use images of at least "
            f"{MIN_SIDE}x{MIN_SIDE} px or remove the file"
        )
    array = np.squeeze(array)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first TIFF
    if array.ndim not in (2, 3):
        raise UserError(
            f"{path} has shape {array.shape}; expected a 2-D image (H, W) or (H, W, C). "
            "Split stacks and volumes into one file per 2-D image."
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array


def _spatial_size(array: np.ndarray) -> tuple[int, int]:
    """Height and width of an (H, W) or (H, W, C) array, before singleton axes go.

    Squeezing first would turn a 1x1 image into a shapeless scalar and a one-row RGB
    image into a grey one, so the size is checked on the array as read (leading page
    axes of a TIFF dropped).
    """
    shape = array.shape
    while len(shape) > 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 1:  # a single row
        return 1, shape[0]
    if len(shape) == 3 and shape[-1] <= 4:
        return shape[0], shape[1]
    return shape[-2], shape[-1]


def to_channels(image: np.ndarray) -> np.ndarray:
    """Return (H, W, C) with C in {1, 3}: grey stays grey, alpha is dropped."""
    if image.ndim == 2:
        return image[..., None]
    if image.shape[-1] == 2:  # grey + alpha
        return image[..., :1]
    if image.shape[-1] == 4:  # RGBA
        return image[..., :3]
    return image


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
