"""Microscope recordings as datasets: frames of an avi/mp4 video or a multi-page TIFF.

Videos are decoded with OpenCV, TIFF stacks with tifffile, one frame at a time, so a
long recording never has to fit in memory. Codecs store grey footage as three equal
channels; a video whose first frame is grey is read as one channel throughout.

For training, masks come from a folder matched by frame index (0 = first frame):
the last number in each file name is its frame, so ``0007.png``, ``frame_7.tif`` and
``man_seg007.tif`` all annotate frame 7. A multi-page TIFF of masks, one page per
frame, works too. Only the annotated frames are used. Without ``--masks`` the reader
looks for ``<video stem>_masks/`` (or ``<video stem>_masks.tif``) next to the video.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import tifffile

from unet_tf.config import DataConfig
from unet_tf.data.checks import load_all, size_mismatch
from unet_tf.data.io import is_image_file, read_image, to_label
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, first_line, list_some

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
TIFF_SUFFIXES = (".tif", ".tiff")
LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
GREY_TOLERANCE = 3  # codecs leave a few grey levels of chroma noise on grey footage


def is_tiff_stack(path: Path) -> bool:
    """A TIFF file with more than one page (a time series, not one image)."""
    if not (path.is_file() and path.suffix.lower() in TIFF_SUFFIXES):
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages) > 1
    except (OSError, ValueError, tifffile.TiffFileError):
        return False


def is_video(path: Path) -> bool:
    """A video file, or a multi-page TIFF stack."""
    path = Path(path)
    return (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or is_tiff_stack(path)


def _is_grey(frame: np.ndarray) -> bool:
    if frame.ndim == 2 or frame.shape[-1] == 1:
        return True
    spread = frame.max(axis=-1).astype(np.int32) - frame.min(axis=-1).astype(np.int32)
    return int(spread.max()) <= GREY_TOLERANCE


class FrameSource:
    """Frames of a video or TIFF stack as (H, W, C) arrays, C = 1 (grey) or 3 (RGB)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"video not found: {self.path}")
        self.is_stack = self.path.suffix.lower() in TIFF_SUFFIXES
        self.fps = 10.0
        if self.is_stack:
            try:
                with tifffile.TiffFile(self.path) as tif:
                    self.count = len(tif.pages)
            except (OSError, ValueError, tifffile.TiffFileError) as exc:
                raise self._unreadable(first_line(exc)) from None
        else:
            capture = self._open()
            self.fps = capture.get(cv2.CAP_PROP_FPS) or self.fps
            self.count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
        first = next(self.pages(), None)
        if first is None:
            raise self._unreadable("no frame could be decoded")
        self.grey = _is_grey(first)
        self.shape = first.shape[:2]

    def _unreadable(self, reason: str) -> UserError:
        return UserError(
            f"cannot open video {self.path}: {reason}; convert it to an MJPEG .avi or an "
            "mp4 (e.g. ffmpeg -i in.mov -c:v mjpeg out.avi) or to a multi-page TIFF"
        )

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise self._unreadable("OpenCV cannot decode it")
        return capture

    def pages(self) -> Iterator[np.ndarray]:
        """Frames exactly as decoded (RGB for videos, the stored pages for TIFF stacks)."""
        if self.is_stack:
            try:
                with tifffile.TiffFile(self.path) as tif:
                    for page in tif.pages:
                        yield page.asarray()
            except (OSError, ValueError, tifffile.TiffFileError) as exc:
                raise self._unreadable(first_line(exc)) from None
            return
        capture = self._open()
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.pages():
            frame = frame[..., None] if frame.ndim == 2 else frame
            yield frame[..., :1] if self.grey else frame[..., :3]


def match_channels(frame: np.ndarray, channels: int | None) -> np.ndarray:
    """Give a frame the channel count a model was trained on (grey <-> RGB)."""
    if channels is None or frame.shape[-1] == channels:
        return frame
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)[..., None]
    return np.repeat(frame[..., :1], channels, axis=-1)


def mask_source(video: Path, cfg: DataConfig) -> Path | None:
    """``--masks`` for the training video, else ``<stem>_masks/`` or ``<stem>_masks.tif``."""
    if cfg.masks and cfg.data and Path(cfg.data) == video:
        path = Path(cfg.masks)
        if not path.exists():
            raise UserError(f"mask folder not found: {path}; check --masks")
        return path
    for candidate in (
        video.with_name(f"{video.stem}_masks"),
        video.with_name(f"{video.stem}_masks.tif"),
    ):
        if candidate.exists():
            return candidate
    return None


def frame_masks(source: Path) -> dict[int, Path]:
    """Frame index -> mask file, from the last number in each file name."""
    files = sorted(p for p in source.iterdir() if is_image_file(p))
    if not files:
        raise UserError(f"no mask images in {source}; name them by frame index, e.g. 0007.png")
    unnumbered = [p.name for p in files if not LAST_NUMBER.search(p.stem)]
    if unnumbered:
        raise UserError(
            f"{len(unnumbered)} mask(s) in {source} have no frame number in their name: "
            f"{list_some(unnumbered)}; name them by frame index, e.g. 0007.png"
        )
    found: dict[int, Path] = {}
    clashes = []
    for p in files:
        index = int(LAST_NUMBER.search(p.stem).group(1))
        if index in found:
            clashes.append(f"{found[index].name} / {p.name}")
        found[index] = p
    if clashes:
        raise UserError(
            f"masks in {source} name the same frame twice: {list_some(clashes)}; keep one"
        )
    return found


def _stack_masks(source: Path, count: int) -> dict[int, np.ndarray]:
    masks = FrameSource(source)
    if masks.count != count:
        raise UserError(
            f"mask stack {source} has {masks.count} page(s) but the video has {count} "
            "frame(s); use one mask page per frame, or a folder of masks named by frame index"
        )
    return {i: to_label(page, source) for i, page in enumerate(masks.pages())}


def read_video(root: Path, cfg: DataConfig, require_masks: bool = True) -> list[Sample]:
    """The annotated frames of a video (every frame when no masks are needed)."""
    source = FrameSource(root)
    masks_at = mask_source(root, cfg)
    if masks_at is None and require_masks:
        raise UserError(
            f"no masks for video {root}: pass --masks DIR with one mask per annotated frame, "
            f"named by frame index (e.g. 0007.png), or put them in {root.stem}_masks/"
        )
    stacked = masks_at is not None and masks_at.is_file()
    masks: dict[int, Path | np.ndarray] = {}
    if masks_at is not None:
        masks = _stack_masks(masks_at, source.count) if stacked else frame_masks(masks_at)
    frames, count = [], 0
    for count, frame in enumerate(source, start=1):
        if not masks or count - 1 in masks:
            frames.append((count - 1, frame))
    beyond = [getattr(masks[i], "name", f"page {i}") for i in sorted(masks) if i >= count]
    if beyond:
        raise UserError(
            f"{len(beyond)} mask(s) in {masks_at} are for frames the video does not have: "
            f"{list_some(beyond)}; {root.name} has {count} frames, numbered 0 to {count - 1}"
        )
    return load_all(
        frames,
        lambda item: _sample(root, item[0], item[1], masks.get(item[0])),
        lambda item: f"frame {item[0]}",
    )


def _sample(video: Path, index: int, frame: np.ndarray, mask: Path | np.ndarray | None) -> Sample:
    if isinstance(mask, Path):
        mask_name, mask = mask, to_label(read_image(mask), mask)
    else:
        mask_name = f"page {index} of the mask stack"
    if mask is not None and mask.shape != frame.shape[:2]:
        raise size_mismatch("mask", mask_name, mask.shape, f"frame {index}", frame.shape)
    return Sample(name=f"{video.stem}_f{index:05d}", image=frame, mask=mask, path=str(video))
