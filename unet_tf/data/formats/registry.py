"""One entry point for every dataset layout: detect it, read it, check it.

Each format is a function ``(root, cfg, require_masks) -> list[Sample]``; new
layouts register here, and the rest of the library never looks at paths.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from unet_tf.config import DataConfig
from unet_tf.data.formats import ctc, drive, dsb, folder, video
from unet_tf.data.io import select_channels
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some
from unet_tf.registry import Registry

Reader = Callable[[Path, DataConfig, bool], list[Sample]]


@dataclass(frozen=True)
class DatasetFormat:
    """How to recognise a layout on disk and how to read it into ``Sample``s."""

    read: Reader
    detect: Callable[[Path], bool]
    # Frames of one sequence (time-lapse, video): neighbours are near copies, so
    # validation is a block of frames and the plan records a time series.
    frames: bool = False


# In detection order, most specific first: a DRIVE subset also has an images/ folder.
DATASET_FORMATS: Registry[DatasetFormat] = Registry("dataset format", "--format")
DATASET_FORMATS.add(
    "video",
    DatasetFormat(video.read_video, video.is_video, frames=True),
    "a video or TIFF stack with --masks",
)
DATASET_FORMATS.add(
    "drive",
    DatasetFormat(drive.read_drive, drive.is_drive_dataset),
    "DRIVE: images/, 1st_manual/, mask/",
)
DATASET_FORMATS.add(
    "dsb",
    DatasetFormat(
        lambda root, cfg, require_masks: dsb.read_dsb(root, require_masks), dsb.is_dsb_dataset
    ),
    "2018 Data Science Bowl: <id>/images/<id>.png, <id>/masks/*.png",
)
DATASET_FORMATS.add(
    "ctc",
    DatasetFormat(ctc.read_ctc, ctc.is_ctc_dataset, frames=True),
    "Cell Tracking Challenge: 01/, 01_GT/, 01_ST/",
)
DATASET_FORMATS.add(
    "folder",
    DatasetFormat(
        lambda root, cfg, require_masks: folder.read_folder(root, require_masks),
        folder.is_folder_dataset,
    ),
    "images/ + masks/ paired by file name",
)
# What --format accepts: a registered layout, or "auto" to detect it.
FORMAT_CHOICES = ("auto", *DATASET_FORMATS.names())


def sample_data_dir() -> Path:
    """The bundled ISBI 2012 sample that ``unet-tf fit`` uses without ``--data``."""
    return Path(str(resources.files("unet_tf") / "sample_data" / "isbi2012"))


def detect_format(root: Path) -> str:
    for entry in DATASET_FORMATS:
        if entry.value.detect(root):
            return entry.name
    raise UserError(
        f"cannot tell the layout of {root}: expected images/ + masks/ folders, a Cell "
        "Tracking Challenge root (01/, 01_GT/), a DRIVE folder (images/, 1st_manual/, mask/), "
        "a Data Science Bowl folder (<id>/images/<id>.png) "
        f"or a video (or pass --format, one of {', '.join(DATASET_FORMATS.names())})"
    )


def resolve_format(root: Path, fmt: str) -> str:
    """``fmt`` as given (``--format``), or the layout detected at ``root`` when it is auto."""
    return fmt if fmt != "auto" else detect_format(root)


def data_root(data: DataConfig) -> Path:
    """The training data's folder: ``--data``, or the bundled sample without it."""
    return sample_data_dir() if data.data is None else Path(data.data)


def is_time_series(data: DataConfig) -> bool:
    """Whether the training data's layout (given or detected) holds frames of one sequence."""
    return DATASET_FORMATS.get(resolve_format(data_root(data), data.format)).frames


def read_dataset(
    root: Path | str | None, cfg: DataConfig, require_masks: bool = True
) -> list[Sample]:
    """Read a dataset in any supported layout and check that it is usable."""
    path = sample_data_dir() if root is None else Path(root)
    if not path.exists():
        raise UserError(f"data not found: {path}; check the path passed to --data / --val")
    samples = DATASET_FORMATS.get(resolve_format(path, cfg.format)).read(path, cfg, require_masks)
    if not samples:
        raise UserError(f"no annotated images found in {path}")
    if cfg.channels is not None:
        samples = [
            replace(s, image=select_channels(s.image, cfg.channels, s.path or s.name))
            for s in samples
        ]
    check_channels(samples)
    return samples


def check_channels(samples: list[Sample]) -> int:
    """All images of a dataset must have the same number of channels."""
    counts = Counter(s.channels for s in samples)
    if len(counts) > 1:
        common = counts.most_common(1)[0][0]
        odd = [f"{Path(s.path).name} ({s.channels})" for s in samples if s.channels != common]
        raise UserError(
            f"images mix channel counts: most have {common}, but {list_some(odd)} differ; "
            "convert them all to grey or all to RGB"
        )
    return next(iter(counts))
