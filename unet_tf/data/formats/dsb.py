"""The 2018 Data Science Bowl nuclei (Caicedo et al. 2019), read exactly as downloaded.

Kaggle's ``stage1_train/`` holds one folder per image, named by its id::

    stage1_train/<id>/images/<id>.png     RGBA PNG (most are grey stored as RGB)
    stage1_train/<id>/masks/<hash>.png    one binary PNG per nucleus

The per-nucleus masks are merged into one uint16 instance label image, nucleus k (in
file-name order) getting label k, so border weights and the object scores see the
nuclei apart. A few masks of the original release overlap; a pixel keeps the first
nucleus (in file-name order) that claims it, so a nucleus drawn over another loses
only the shared pixels and none grows. A ``masks/`` folder without files is an
image with no nuclei; a missing one is an image without annotation (allowed only when
masks are not needed, as for ``predict`` on ``stage1_test/``).

The images are microscopy of three kinds: fluorescence and bright-field stored as
RGB(A) with R = G = B, and colour H&E histology. Alpha is transparency and is dropped;
an image whose three channels are equal everywhere is read as one grey channel, any
other as RGB. A network needs one channel count, so when a dataset mixes the two the
colour images are converted to grey (ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B, as
Pillow's ``convert("L")``) with one warning: grey is what most DSB images are, and the
nuclei stay darker or brighter than their surroundings in either. Pass only the colour
images (or only the grey ones) to keep colour.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from unet_tf.data.checks import load_all, size_mismatch, warn
from unet_tf.data.io import is_grey, is_image_file, read_image, to_channels, to_label
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some

IMAGES, MASKS = "images", "masks"
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, Pillow's RGB -> L weights


def _image_file(folder: Path) -> Path:
    return folder / IMAGES / f"{folder.name}.png"


def _entries(root: Path) -> list[Path]:
    """The image folders of a DSB root (hidden ones, like ``.ipynb_checkpoints``, skipped)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_dsb_dataset(root: Path) -> bool:
    """A folder whose sub-folders hold ``<id>/images/<id>.png``."""
    return root.is_dir() and any(_image_file(p).is_file() for p in _entries(root))


def read_dsb(root: Path, require_masks: bool = True) -> list[Sample]:
    """Read every image with its merged nucleus masks; one channel count for the whole set."""
    folders = _entries(root)
    stray = [p.name for p in folders if not _image_file(p).is_file()]
    if stray:
        raise UserError(
            f"{len(stray)} folder(s) of the DSB dataset {root} have no images/<id>.png: "
            f"{list_some(stray)}; remove them or pass another --format"
        )
    if require_masks:
        unannotated = [p.name for p in folders if not (p / MASKS).is_dir()]
        if unannotated:
            raise UserError(
                f"{len(unannotated)} DSB image(s) in {root} have no masks/ folder: "
                f"{list_some(unannotated)}; add their per-nucleus masks or remove them"
            )
    samples = load_all(folders, _load, lambda p: p.name)
    return common_channels(samples)


def _load(folder: Path) -> Sample:
    path = _image_file(folder)
    image = grey_if_equal(to_channels(read_image(path)))
    mask = None
    if (folder / MASKS).is_dir():
        files = sorted(p for p in (folder / MASKS).iterdir() if is_image_file(p))
        mask = merge_masks(files, image.shape[:2], path.name)
    return Sample(name=folder.name, image=image, mask=mask, path=str(path))


def merge_masks(paths: list[Path], shape: tuple[int, int], image_name: str) -> np.ndarray:
    """One uint16 label image from binary nucleus masks: label k for the k-th file.

    A pixel claimed by several masks keeps the first; every mask must have the
    image's ``shape``. No files give an image without nuclei.
    """
    if len(paths) > np.iinfo(np.uint16).max:
        raise UserError(f"{paths[0].parent} holds more than 65535 masks; split the image")
    labels = np.zeros(shape, np.uint16)
    for k, path in enumerate(paths, start=1):
        nucleus = to_label(read_image(path), path) > 0
        if nucleus.shape != labels.shape:
            raise size_mismatch("mask", path, nucleus.shape, image_name, shape)
        labels[nucleus & (labels == 0)] = k
    return labels


def grey_if_equal(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) with R = G = B everywhere -> (H, W, 1); anything else unchanged."""
    if image.shape[-1] == 3 and is_grey(image):
        return image[..., :1]
    return image


def to_grey(image: np.ndarray) -> np.ndarray:
    """An RGB image as one luma channel, in its own dtype."""
    grey = image[..., :3].astype(np.float64) @ LUMA
    if np.issubdtype(image.dtype, np.integer):
        grey = np.clip(np.rint(grey), 0, np.iinfo(image.dtype).max)
    return grey.astype(image.dtype)[..., None]


def common_channels(samples: list[Sample]) -> list[Sample]:
    """Convert the colour images of a grey-and-colour mix to grey, with one warning."""
    colour = [s for s in samples if s.channels == 3]
    if not colour or len(colour) == len(samples):
        return samples
    warn(
        f"{len(colour)} of {len(samples)} DSB images are colour (e.g. "
        f"{list_some([s.name for s in colour])}) and the rest grey; the colour ones are "
        "converted to grey (luma) so all share one channel; pass them apart to keep colour"
    )
    return [replace(s, image=to_grey(s.image)) if s.channels == 3 else s for s in samples]
