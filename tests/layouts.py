"""Tiny datasets written in exactly the layouts users download: CTC, DRIVE and videos.

Pixel content is synthetic (bright touching cells, dark vessel lines, a moving disk)
but file names, folders, dtypes and codecs are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image


def cell_labels(size: int, t: int, offset: int = 0) -> np.ndarray:
    """uint16 instance labels: two touching squares and one apart, drifting with ``t``."""
    labels = np.zeros((size, size), np.uint16)
    y = size // 4 + t % 4
    labels[y : y + size // 4, 8 : 8 + size // 4] = 1 + offset
    labels[y : y + size // 4, 8 + size // 4 : 8 + size // 2] = 2 + offset  # touches cell 1
    labels[size // 2 + 8 : size // 2 + 20, size // 2 : size // 2 + 12] = 3 + offset
    return labels


def write_ctc(
    root: Path,
    sequences: tuple[str, ...] = ("01", "02"),
    frames: int = 5,
    size: int = 64,
    gt_frames: tuple[int, ...] = (0, 2),
    st_frames: tuple[int, ...] = (0, 1, 2, 3),
) -> Path:
    """``01/t000.tif`` frames, ``01_GT/SEG/man_seg000.tif`` and ``01_ST/SEG`` masks.

    Gold labels are 1..3, silver ones 101..103, so a test can tell which was used.
    """
    rng = np.random.default_rng(0)
    for seq in sequences:
        (root / seq).mkdir(parents=True)
        (root / f"{seq}_GT" / "SEG").mkdir(parents=True)
        (root / f"{seq}_ST" / "SEG").mkdir(parents=True)
        for t in range(frames):
            labels = cell_labels(size, t)
            image = 1000 + 20000 * (labels > 0) + rng.normal(0, 300, labels.shape)
            tifffile.imwrite(root / seq / f"t{t:03d}.tif", image.astype(np.uint16))
            if t in gt_frames:
                tifffile.imwrite(root / f"{seq}_GT" / "SEG" / f"man_seg{t:03d}.tif", labels)
            if t in st_frames:
                silver = cell_labels(size, t, offset=100) * (labels > 0)
                tifffile.imwrite(root / f"{seq}_ST" / "SEG" / f"man_seg{t:03d}.tif", silver)
    return root


def vessel_image(size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An RGB fundus-like image with thin dark lines, its vessel mask and circular FOV."""
    rng = np.random.default_rng(seed)
    h, w = size
    vessels = np.zeros(size, np.uint8)
    for _ in range(4):
        x0, x1 = rng.integers(0, w, 2)
        cv2.line(vessels, (int(x0), 0), (int(x1), h - 1), 255, int(rng.integers(1, 3)))
    yy, xx = np.mgrid[:h, :w]
    fov = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (min(h, w) * 0.45) ** 2).astype(np.uint8) * 255
    grey = 150 - 80 * (vessels > 0) + rng.normal(0, 6, size)
    rgb = np.stack([grey, grey * 0.5, grey * 0.2], axis=-1) * (fov[..., None] > 0)
    return np.clip(rgb, 0, 255).astype(np.uint8), vessels * (fov > 0), fov


def write_drive(
    root: Path, numbers: tuple[int, ...] = (21, 22, 23), size=(60, 64), subset="training"
) -> Path:
    """``images/NN_training.tif`` (LZW), ``1st_manual/NN_manual1.gif`` and
    ``mask/NN_training_mask.gif``."""
    for folder in ("images", "1st_manual", "mask"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n in numbers:
        rgb, vessels, fov = vessel_image(size, n)
        tifffile.imwrite(root / "images" / f"{n:02d}_{subset}.tif", rgb, compression="lzw")
        Image.fromarray(vessels).convert("P").save(root / "1st_manual" / f"{n:02d}_manual1.gif")
        Image.fromarray(fov).convert("P").save(root / "mask" / f"{n:02d}_{subset}_mask.gif")
    return root


def disk_frames(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey frames of a disk moving right, and its masks (0/255)."""
    yy, xx = np.mgrid[:size, :size]
    masks = np.stack(
        [((yy - size / 2) ** 2 + (xx - 16 - 3 * i) ** 2 <= (size / 6) ** 2) for i in range(n)]
    ).astype(np.uint8)
    frames = (40 + 170 * masks).astype(np.uint8)
    return frames, masks * 255


def write_video(
    path: Path, n: int = 8, size: int = 64, annotated: tuple[int, ...] = (1, 4, 6), masks=True
) -> Path:
    """An MJPEG .avi of a moving disk, with ``<stem>_masks/NNNN.png`` for some frames."""
    frames, masks_array = disk_frames(n, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (size, size), True)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    if masks:
        folder = path.with_name(f"{path.stem}_masks")
        folder.mkdir()
        for i in annotated:
            Image.fromarray(masks_array[i]).save(folder / f"frame_{i:04d}.png")
    return path


def write_tiff_stack(path: Path, n: int = 6, size: int = 64) -> Path:
    """A multi-page TIFF recording and ``<stem>_masks.tif`` with one mask page per frame."""
    frames, masks = disk_frames(n, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, frames.astype(np.uint16) * 200)
    tifffile.imwrite(path.with_name(f"{path.stem}_masks.tif"), masks)
    return path
