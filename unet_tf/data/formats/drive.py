"""DRIVE retinal vessels (Staal et al. 2004), read exactly as downloaded.

Each subset folder (``training/``, ``test/``) holds ``images/NN_training.tif``
(``NN_test.tif``), the vessel annotation ``1st_manual/NN_manual1.gif`` and the
field-of-view mask ``mask/NN_training_mask.gif``. Files are matched by their number.

The FOV becomes ``Sample.fov``: the pipeline gives pixels outside it zero loss weight
and every metric ignores them, as the DRIVE literature scores vessels inside the
FOV only. Without FOV masks the dark corners would inflate every score, so a missing
one is an error rather than a silent default.
"""

from __future__ import annotations

import re
from pathlib import Path

from unet_tf.config import DataConfig
from unet_tf.data.checks import load_all, size_mismatch
from unet_tf.data.io import is_image_file, read_image, to_channels, to_label
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some

IMAGES, MANUAL, FOV = "images", "1st_manual", "mask"
NUMBER = re.compile(r"^(\d+)_")


def _is_subset(folder: Path) -> bool:
    return (folder / IMAGES).is_dir() and (folder / MANUAL).is_dir()


def is_drive_dataset(root: Path) -> bool:
    """A DRIVE subset folder, or the DRIVE root that holds ``training/``."""
    return root.is_dir() and (_is_subset(root) or _is_subset(root / "training"))


def subset_folder(root: Path) -> Path:
    """The folder to read: ``root`` itself, or ``root/training`` for the DRIVE root.

    Pass ``DRIVE/test`` (as ``--val`` or to ``evaluate``) to use the test images.
    """
    return root if (root / IMAGES).is_dir() else root / "training"


def _by_number(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        m.group(1): p
        for p in sorted(folder.iterdir())
        if is_image_file(p) and (m := NUMBER.match(p.name))
    }


def read_drive(root: Path, cfg: DataConfig, require_masks: bool = True) -> list[Sample]:
    """Read every DRIVE image with its vessel mask and its FOV mask."""
    folder = subset_folder(root)
    images = _by_number(folder / IMAGES)
    if not images:
        raise UserError(f"no DRIVE images named NN_training.tif / NN_test.tif in {folder / IMAGES}")
    manual, fov = _by_number(folder / MANUAL), _by_number(folder / FOV)
    no_fov = [images[n].name for n in images if n not in fov]
    if no_fov:
        raise UserError(
            f"{len(no_fov)} DRIVE image(s) have no field-of-view mask in {folder / FOV}: "
            f"{list_some(no_fov)}; add mask/NN_training_mask.gif (DRIVE ships them), since "
            "vessels are scored inside the FOV only"
        )
    no_manual = [images[n].name for n in images if n not in manual]
    if require_masks and no_manual:
        raise UserError(
            f"{len(no_manual)} DRIVE image(s) have no vessel annotation in "
            f"{folder / MANUAL}: {list_some(no_manual)}; add NN_manual1.gif files"
        )
    jobs = [(images[n], manual.get(n), fov[n]) for n in images]
    return load_all(jobs, lambda job: _load(*job), lambda job: job[0].name)


def _load(image_path: Path, manual_path: Path | None, fov_path: Path) -> Sample:
    image = to_channels(read_image(image_path))
    fov = to_label(read_image(fov_path), fov_path)
    if fov.shape != image.shape[:2]:
        raise size_mismatch("FOV mask", fov_path, fov.shape, image_path.name, image.shape)
    mask = None
    if manual_path is not None:
        mask = to_label(read_image(manual_path), manual_path)
        if mask.shape != image.shape[:2]:
            raise size_mismatch("mask", manual_path, mask.shape, image_path.name, image.shape)
    return Sample(name=image_path.stem, image=image, mask=mask, fov=fov > 0, path=str(image_path))
