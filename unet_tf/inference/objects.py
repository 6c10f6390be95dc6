"""Labelled objects in the files a microscopy lab's tools open: Fiji, napari, QuPath, ilastik.

For one image ``NAME``, ``predict --instances`` writes:

- ``NAME_labels.tif``: uint16 labels (0 = background, 1..N one per object) as an
  ImageJ TIFF, with the pixel size in µm when the input recorded one, so Fiji and
  napari open it as a label image at the right scale;
- ``NAME_rois.zip``: one ImageJ polygon ROI per object, traced along its outer
  edge (Fiji's ROI Manager and QuPath import it);
- ``NAME_objects.csv``: one row per object, measured with scikit-image's
  ``regionprops_table`` (see :data:`COLUMNS`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import roifile
import tifffile
from scipy import ndimage
from skimage.measure import find_contours, regionprops_table

from unet_tf.atomic import atomic_path
from unet_tf.errors import UserError

# regionprops names -> CSV columns; bbox is (min_row, min_col, max_row, max_col), max exclusive.
PROPERTIES = {
    "label": "label",
    "area": "area_px",
    "centroid-0": "centroid_y_px",
    "centroid-1": "centroid_x_px",
    "bbox-0": "bbox_min_row",
    "bbox-1": "bbox_min_col",
    "bbox-2": "bbox_max_row",
    "bbox-3": "bbox_max_col",
    "eccentricity": "eccentricity",
    "solidity": "solidity",
}
MEASURED = ("label", "area", "centroid", "bbox", "eccentricity", "solidity")
AREA_UM2 = "area_um2"  # empty when the image has no pixel size


def check_label_range(labels: np.ndarray, name: str) -> None:
    if labels.max(initial=0) > np.iinfo(np.uint16).max:
        raise UserError(
            f"{name} has {labels.max()} objects, more than a 16-bit label image can hold; "
            "predict it in parts (crop the image)"
        )


def write_label_tiff(
    path: Path, labels: np.ndarray, pixel_size: tuple[float, float] | None = None
) -> None:
    """uint16 labels as an ImageJ TIFF, calibrated in µm when ``pixel_size`` (y, x) is known."""
    check_label_range(labels, path.name)
    extra = {}
    if pixel_size is not None:
        extra = {"resolution": (1 / pixel_size[1], 1 / pixel_size[0]), "metadata": {"unit": "um"}}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.uint16), imagej=True, **extra)


def outline(object_mask: np.ndarray) -> np.ndarray:
    """(N, 2) x, y polygon along the outer edge of one object's pixels, in pixel-corner
    coordinates (ImageJ's): a pixel (r, c) spans x in [c, c + 1], y in [r, r + 1]."""
    padded = np.pad(object_mask.astype(np.float32), 1)
    contours = find_contours(padded, 0.5)
    # The outer edge encloses the most area; holes (if not filled) give inner contours.
    longest = max(contours, key=len)
    # find_contours runs through pixel centres +-0.5 of the padded array: shift to corners.
    return np.stack([longest[:, 1] - 0.5, longest[:, 0] - 0.5], axis=1)


def object_rois(labels: np.ndarray) -> list[roifile.ImagejRoi]:
    """One polygon ROI per object, named by its label."""
    rois = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        rows, cols = box
        points = outline(labels[rows, cols] == index)
        points += (cols.start, rows.start)
        roi = roifile.ImagejRoi.frompoints(points, name=f"object-{index:05d}")
        roi.roitype = roifile.ROI_TYPE.POLYGON  # a closed outline, not a freehand line
        rois.append(roi)
    return rois


def write_rois(path: Path, labels: np.ndarray) -> None:
    """The objects' outlines as an ImageJ ROI zip (Fiji: drag it onto the image)."""
    rois = object_rois(labels)
    with atomic_path(path) as tmp:
        roifile.roiwrite(tmp, rois, mode="w")


def object_table(
    labels: np.ndarray, image: np.ndarray, pixel_size: tuple[float, float] | None = None
) -> list[dict[str, float | int | str]]:
    """Per-object measurements: size, position, bounding box, shape, mean of each channel.

    ``image`` is (H, W, C) at the labels' size; ``area_um2`` is the area times the
    pixel area when ``pixel_size`` is known, and empty otherwise.
    """
    image = image[..., None] if image.ndim == 2 else image
    props = regionprops_table(
        labels.astype(np.int32),
        intensity_image=image.astype(np.float64),
        properties=(*MEASURED, "intensity_mean"),
    )
    pixel_area = None if pixel_size is None else pixel_size[0] * pixel_size[1]
    rows = []
    for i in range(len(props["label"])):
        row: dict[str, float | int | str] = {}
        for key, column in PROPERTIES.items():
            value = props[key][i]
            row[column] = int(value) if key in ("label", "area") or "bbox" in key else float(value)
        row[AREA_UM2] = "" if pixel_area is None else float(props["area"][i]) * pixel_area
        for c in range(image.shape[-1]):
            key = f"intensity_mean-{c}"
            key = key if key in props else "intensity_mean"
            row[f"mean_intensity_ch{c}"] = float(props[key][i])
        rows.append(row)
    return rows


def table_columns(channels: int) -> list[str]:
    names = list(PROPERTIES.values())
    names.insert(names.index("area_px") + 1, AREA_UM2)
    return names + [f"mean_intensity_ch{c}" for c in range(channels)]


def write_object_table(
    path: Path,
    labels: np.ndarray,
    image: np.ndarray,
    pixel_size: tuple[float, float] | None = None,
) -> None:
    """:func:`object_table` as CSV, one row per object, a header even without objects."""
    rows = object_table(labels, image, pixel_size)
    channels = 1 if image.ndim == 2 else image.shape[-1]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=table_columns(channels))
        writer.writeheader()
        writer.writerows(rows)
