"""Cell Tracking Challenge datasets, read exactly as downloaded.

A CTC root holds sequences ``01/``, ``02/`` of frames ``t000.tif`` (``t0000.tif`` in
long sequences) and, per sequence, segmentation masks in ``01_GT/SEG/`` (gold truth,
hand-drawn, for a few frames) and ``01_ST/SEG/`` (silver truth, for most frames):
``man_seg000.tif``, or ``man_seg_000_012.tif`` for slice 12 of a 3-D frame.

Masks are uint16 instance labels (0 = background, one value per cell). They are
kept as stored: the binary target is derived later, while border weights and object
metrics need the cells apart. Only frames with a mask are used for training.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import tifffile

from unet_tf.config import DataConfig
from unet_tf.data.checks import load_all, size_mismatch
from unet_tf.data.io import natural_key, read_image, to_channels, to_label
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, first_line, list_some

SEQUENCE = re.compile(r"^\d{2,}$")
TRACK = re.compile(r"^(\d{2,})_(GT|ST)$")
FRAME = re.compile(r"^t(\d+)\.tiff?$", re.IGNORECASE)
SEG_MASK = re.compile(r"^man_seg_?(\d+)(?:_(\d+))?\.tiff?$", re.IGNORECASE)
SOURCES = {"gt": ("GT",), "st": ("ST",), "gt+st": ("GT", "ST")}  # first listed wins


def is_ctc_dataset(root: Path) -> bool:
    """A folder with sequence folders (``01``) or their annotations (``01_GT``)."""
    if not root.is_dir():
        return False
    return any(
        p.is_dir() and (SEQUENCE.match(p.name) or TRACK.match(p.name)) for p in root.iterdir()
    )


def find_sequences(root: Path) -> list[str]:
    """Sequence folders that contain at least one ``tNNN.tif`` frame."""
    names = [p.name for p in root.iterdir() if p.is_dir() and SEQUENCE.match(p.name)]
    return sorted((n for n in names if any(_frames(root / n))), key=natural_key)


def _frames(folder: Path) -> dict[int, Path]:
    return {int(m.group(1)): p for p in folder.iterdir() if (m := FRAME.match(p.name))}


def _masks(folder: Path) -> dict[tuple[int, int | None], Path]:
    """(frame, slice or None) -> mask file of one ``SEG`` folder."""
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = SEG_MASK.match(p.name)
        if m:
            found[(int(m.group(1)), None if m.group(2) is None else int(m.group(2)))] = p
    return found


def choose_sequences(root: Path, cfg: DataConfig) -> list[str]:
    """``cfg.sequences``, or every sequence not reserved for validation."""
    available = find_sequences(root)
    if not available:
        raise UserError(
            f"{root} has no Cell Tracking Challenge sequences: expected folders 01/, 02/ "
            "with frames t000.tif, ... next to 01_GT/SEG/ or 01_ST/SEG/; pass the dataset "
            "root (e.g. DIC-C2DH-HeLa/) or another --format"
        )
    reserved = set(cfg.val_sequences or [])
    wanted = list(cfg.sequences) if cfg.sequences else [s for s in available if s not in reserved]
    missing = [s for s in wanted if s not in available]
    if missing:
        raise UserError(
            f"sequence(s) {list_some(missing)} not found in {root}; it has {', '.join(available)}"
        )
    overlap = sorted(set(wanted) & reserved) if cfg.sequences else []
    if overlap:
        raise UserError(
            f"sequence(s) {', '.join(overlap)} are both in --sequences and --val-sequences; "
            "train and validate on different sequences"
        )
    if not wanted:
        raise UserError(
            f"no training sequences left in {root}: all of {', '.join(available)} are "
            "--val-sequences; pass --sequences"
        )
    return wanted


def validation_config(cfg: DataConfig) -> DataConfig:
    """The data settings that read ``--val-sequences`` from the training root."""
    if cfg.val:
        raise UserError("pass either --val or --val-sequences, not both")
    return dataclasses.replace(cfg, format="ctc", sequences=cfg.val_sequences, val_sequences=None)


def _annotated(root: Path, sequence: str, annotations: str) -> dict[tuple[int, int | None], Path]:
    """Each annotated (frame, slice) and its mask: gold truth first, then silver."""
    chosen: dict[tuple[int, int | None], Path] = {}
    for source in SOURCES[annotations]:
        for key, path in _masks(root / f"{sequence}_{source}" / "SEG").items():
            chosen.setdefault(key, path)
    return dict(sorted(chosen.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)))


def read_ctc(root: Path, cfg: DataConfig, require_masks: bool = True) -> list[Sample]:
    """Read the frames of the chosen sequences that have masks (all frames if none needed)."""
    if cfg.annotations not in SOURCES:
        raise UserError(
            f"unknown --annotations {cfg.annotations!r}; choose one of {', '.join(SOURCES)}"
        )
    jobs: list[tuple[str, Path, Path | None, int | None]] = []
    for sequence in choose_sequences(root, cfg):
        frames = _frames(root / sequence)
        masks = _annotated(root, sequence, cfg.annotations)
        orphans = [p.name for (t, _), p in masks.items() if t not in frames]
        if orphans:
            raise UserError(
                f"{len(orphans)} mask(s) of sequence {sequence} have no frame in "
                f"{root / sequence}: {list_some(orphans)}; add the frames or remove the masks"
            )
        if require_masks and not masks:
            folders = " or ".join(f"{sequence}_{s}/SEG/" for s in SOURCES[cfg.annotations])
            raise UserError(
                f"sequence {sequence} of {root} has no masks in {folders} "
                f"(--annotations {cfg.annotations}); choose other --annotations or --sequences"
            )
        if require_masks:
            jobs += [(sequence, frames[t], path, z) for (t, z), path in masks.items()]
        else:
            by_frame = {t: (path, z) for (t, z), path in masks.items() if z is None}
            jobs += [(sequence, frames[t], *by_frame.get(t, (None, None))) for t in sorted(frames)]
    return load_all(
        jobs, lambda job: _load(*job), lambda job: job[2].name if job[2] else job[1].name
    )


def _load(sequence: str, frame: Path, mask_path: Path | None, z: int | None) -> Sample:
    image = to_channels(read_image(frame) if z is None else _read_slice(frame, z))
    name = f"{sequence}_{frame.stem}" + ("" if z is None else f"_z{z:03d}")
    mask = None
    if mask_path is not None:
        mask = to_label(read_image(mask_path), mask_path)
        if mask.shape != image.shape[:2]:
            raise size_mismatch("mask", mask_path, mask.shape, frame.name, image.shape)
    return Sample(name=name, image=image, mask=mask, path=str(frame))


def _read_slice(path: Path, z: int) -> np.ndarray:
    """Slice ``z`` of a 3-D frame, for the ``man_seg_TTT_ZZZ.tif`` slice annotations."""
    try:
        volume = tifffile.imread(path)
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        reason = first_line(exc)
        raise UserError(f"cannot read {path}: {reason}; replace or remove the file") from None
    if volume.ndim != 3 or z >= volume.shape[0]:
        raise UserError(
            f"{path} has shape {volume.shape} but a mask annotates its slice {z}; "
            "check that the mask belongs to this frame"
        )
    return volume[z]
