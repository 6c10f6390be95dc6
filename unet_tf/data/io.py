"""Reading and writing single image files, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from unet_tf.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp")


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def read_image(path: Path | str) -> np.ndarray:
    """Read a 2-D image as (H, W) or (H, W, C), keeping 8-bit, 16-bit or float values.

    TIFFs go through tifffile (DRIVE's are LZW-compressed, which needs imagecodecs);
    everything else through Pillow. Palette images (GIF) are expanded to their real
    grey or RGB values, never left as palette indices.
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
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot read {path}: {reason}; replace or remove the file "
            "(it may be truncated or not an image)"
        ) from None
    return _squeeze_to_2d(array, path)


def _is_grey(rgb: np.ndarray) -> bool:
    """A palette of greys (GIF masks) should read as one channel, not three."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _squeeze_to_2d(array: np.ndarray, path: Path) -> np.ndarray:
    if array.size == 0:  # tifffile returns an empty array for a TIFF with a broken header
        raise UserError(
            f"cannot read {path}: it holds no image data; replace or remove the file "
            "(it may be truncated or corrupt)"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
