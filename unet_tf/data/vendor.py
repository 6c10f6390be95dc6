"""Microscope vendors' formats (Zeiss ``.czi``, Leica ``.lif``, Nikon ``.nd2``) through bioio.

bioio gives every format the same dimensions (T, C, Z, Y, X, and S for the samples of an
RGB pixel) and the pixel size in micrometres, so :func:`unet_tf.data.io.read_image`
arranges them with the same axis rules as a TIFF: channels kept and put last, a time
or depth axis longer than 1 refused with the fix. Each format needs its own bioio
plugin, an optional extra of unet-tf; bioio is imported only when such a file is read,
so ``import unet_tf`` never pays for it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from unet_tf.data.checks import warn
from unet_tf.errors import UserError, first_line

# suffix -> (the bioio plugin that reads it, the unet-tf extra that installs it)
PLUGINS = {
    ".czi": ("bioio_czi", "czi"),
    ".lif": ("bioio_lif", "lif"),
    ".nd2": ("bioio_nd2", "nd2"),
}
SUFFIXES = tuple(PLUGINS)


def is_vendor_file(path: Path) -> bool:
    return path.suffix.lower() in PLUGINS


def reader_for(path: Path):
    """The bioio plugin's ``Reader`` class for ``path``'s format, or a one-line install hint."""
    module, extra = PLUGINS[path.suffix.lower()]
    try:
        return importlib.import_module(module).Reader
    except ImportError:
        raise UserError(
            f"reading {path.suffix.lower()} files ({path.name}) needs the {module} plugin; "
            f'install it with pip install "unet-tf[{extra}]"'
        ) from None


def read_bioio(path: Path, reader=None) -> tuple[np.ndarray, str, tuple[float, float] | None]:
    """The first scene of ``path`` as (array, its axis letters, (y, x) pixel size in µm).

    ``reader`` is a bioio plugin's ``Reader``; by default the one for the file's suffix.
    A file with several scenes (a LIF project, a CZI with tiles of a slide) gives its
    first, with a warning, as a multi-page TIFF gives its first series.
    """
    reader = reader or reader_for(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    from bioio import BioImage

    try:
        image = BioImage(path, reader=reader)
        scenes = image.scenes
        array = np.asarray(image.data)
        axes = image.dims.order
        sizes = image.physical_pixel_sizes
    except Exception as exc:  # every plugin raises its own types for a damaged file
        raise UserError(
            f"cannot read {path}: {first_line(exc)}; replace or remove the file "
            "(it may be truncated, or saved by a newer version of the microscope software)"
        ) from None
    if len(scenes) > 1:
        warn(
            f"{path} holds {len(scenes)} scenes ({', '.join(scenes[:3])}, ...); only the "
            "first is read: export each scene to its own file to use the others"
        )
    pixel_size = None
    if sizes.Y and sizes.X and sizes.Y > 0 and sizes.X > 0:
        pixel_size = (float(sizes.Y), float(sizes.X))
    return array, axes, pixel_size
