"""Segmenting a recording frame by frame: mask video, overlay video and an area table.

For a video input ``movie.avi`` it writes, in the output folder:

- ``movie_mask.avi``: the masks as a lossless (FFV1) video, 255 = foreground (class
  indices for multi-class models); for a TIFF stack input, ``movie_mask.tif``, a
  multi-page TIFF with one mask per frame instead;
- ``movie_overlay.mp4``: each frame with its prediction painted on, to watch;
- ``movie_areas.csv``: per frame, the time, the foreground area in pixels and as a
  fraction, and the number of objects, counted as ``predict --instances`` counts
  them on single images (:func:`~unet_tf.inference.postprocess.count_cells`), which
  is what a study of a cell's behaviour over a recording plots.

Frames are read, predicted and written one at a time, so recordings of any length fit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import tifffile

from unet_tf.atomic import atomic_path
from unet_tf.data.formats.video import FrameSource, is_video, match_channels
from unet_tf.data.io import select_channels
from unet_tf.errors import UserError
from unet_tf.inference.postprocess import InstanceOptions, count_cells
from unet_tf.inference.predictor import Predictor, binary_mask, to_mask
from unet_tf.rundir import check_new_outputs
from unet_tf.runtime.progress import progress
from unet_tf.viz import overlay

MASK_CODECS = ("FFV1", "HFYU", "MJPG")  # lossless first; MJPG only if neither exists
OVERLAY_CODECS = ("mp4v", "MJPG")


def split_videos(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """Separate video files and TIFF stacks from image files and folders."""
    videos = [p for p in inputs if is_video(p)]
    return videos, [p for p in inputs if p not in videos]


def video_outputs(video: Path, out: Path) -> dict[str, Path]:
    stem = video.stem
    stack = video.suffix.lower() in (".tif", ".tiff")
    return {
        "mask": out / (f"{stem}_mask.tif" if stack else f"{stem}_mask.avi"),
        "overlay": out / f"{stem}_overlay.mp4",
        "areas": out / f"{stem}_areas.csv",
    }


def open_writer(
    path: Path, codecs: tuple[str, ...], fps: float, size: tuple[int, int], colour: bool
):
    """The first codec this OpenCV build can write; ``size`` is (width, height)."""
    for codec in codecs:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size, colour)
        if writer.isOpened():
            return writer
        writer.release()
    raise UserError(f"OpenCV cannot write {path} with any of {', '.join(codecs)}")


class MaskWriter:
    """Masks to a lossless video, or to a multi-page TIFF for TIFF-stack inputs."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.path = path
        if path.suffix == ".tif":
            self.tiff = tifffile.TiffWriter(path)
            self.video = None
        else:
            self.tiff = None
            self.video = open_writer(path, MASK_CODECS, fps, size, colour=False)

    def write(self, mask: np.ndarray) -> None:
        if self.tiff is not None:
            self.tiff.write(mask, compression="zlib", metadata=None)
        else:
            self.video.write(mask)

    def close(self) -> None:
        if self.tiff is not None:
            self.tiff.close()
        else:
            self.video.release()


def predict_video(
    predictor: Predictor,
    video: Path,
    out: Path,
    overwrite: bool = False,
    instances: InstanceOptions | None = None,
) -> dict[str, Path]:
    """Segment every frame of ``video``; return the paths written.

    ``instances`` (the ``--instances`` options) decide how objects are counted; the
    run's channels (``data.channels``) are picked from each frame first.
    """
    paths = video_outputs(Path(video), Path(out))
    check_new_outputs(list(paths.values()), "--out", overwrite)
    source = FrameSource(video)
    out.mkdir(parents=True, exist_ok=True)
    h, w = source.shape
    binary = binary_mask(predictor.cfg.model.num_classes, predictor.cfg.data.target)
    masks = MaskWriter(paths["mask"], source.fps, (w, h))
    overlays = open_writer(paths["overlay"], OVERLAY_CODECS, source.fps, (w, h), colour=True)
    try:
        with atomic_path(paths["areas"]) as tmp, tmp.open("w", newline="") as handle:
            table = csv.writer(handle)
            table.writerow(["frame", "time_s", "foreground_px", "foreground_fraction", "objects"])
            frames = progress(source, total=source.count, desc=video.name, unit="frame")
            for index, frame in enumerate(frames):
                if predictor.cfg.data.channels is not None:
                    frame = select_channels(frame, predictor.cfg.data.channels, video.name)
                frame = match_channels(frame, predictor.in_channels)
                probs = predictor.predict(frame, f"{video.name} frame {index}")
                pred = to_mask(probs, predictor.threshold, predictor.cfg.data.target)
                foreground = (pred > 0).astype(np.uint8)
                area = int(foreground.sum())
                objects = count_cells(probs, predictor.cfg, predictor.threshold, instances)
                table.writerow(
                    [index, round(index / source.fps, 4), area, round(area / pred.size, 6), objects]
                )
                masks.write(pred * 255 if binary else pred)
                overlays.write(cv2.cvtColor(overlay(frame, foreground), cv2.COLOR_RGB2BGR))
    finally:
        masks.close()
        overlays.release()
    return paths
