"""The figure and table of docs/inference.md's "Objects for Fiji, napari and QuPath".

Reads back what ``unet-tf predict --instances`` wrote for one image, the way the
lab's tools read it, and shows it:

- ``NAME_labels.tif`` read with tifffile as a label image and drawn with a random
  colour per label over the input, as napari's labels layer and Fiji's glasbey LUT
  show it (the panel also says the dtype, the object count and the pixel size read
  from the file's ImageJ calibration);
- ``NAME_rois.zip`` read with ``roifile.roiread``, each ROI's polygon drawn with its
  name, as Fiji's ROI Manager shows the set;
- ``NAME_objects.csv``: its first rows printed as a Markdown table.

    .venv/bin/python experiments/lab_outputs_figure.py PRED_DIR NAME IMAGE docs/objects.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import roifile
import tifffile
from skimage.color import label2rgb

from unet_tf.atomic import atomic_path
from unet_tf.data.io import read_image
from unet_tf.viz import contrast_stretch

SHOWN_COLUMNS = (
    "label",
    "area_px",
    "area_um2",
    "centroid_y_px",
    "centroid_x_px",
    "eccentricity",
    "solidity",
    "mean_intensity_ch0",
)


def pixel_size(path: Path) -> str:
    """The calibration Fiji reads from an ImageJ TIFF, or "none"."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        unit = (tif.imagej_metadata or {}).get("unit")
        x_resolution = page.tags.get("XResolution")
        if not unit or x_resolution is None:
            return "none"
        numerator, denominator = x_resolution.value
        return f"{denominator / numerator:.3g} {unit}/px"


def figure(pred: Path, name: str, image_path: Path, out: Path) -> None:
    image = read_image(image_path)
    grey = contrast_stretch(image.mean(axis=-1) if image.ndim == 3 else image)
    labels = tifffile.imread(pred / f"{name}_labels.tif")
    rois = roifile.roiread(pred / f"{name}_rois.zip")
    rng = np.random.default_rng(1)
    colours = rng.uniform(0.2, 1.0, size=(int(labels.max()), 3))

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), dpi=110)
    axes[0].imshow(label2rgb(labels, image=grey, colors=colours, alpha=0.45, bg_label=0))
    axes[0].set_title(
        f"{name}_labels.tif: {labels.dtype}, {int(labels.max())} labels, "
        f"pixel size {pixel_size(pred / f'{name}_labels.tif')}",
        fontsize=8,
    )
    axes[1].imshow(grey, cmap="gray")
    for roi in rois:
        points = roi.coordinates()
        closed = np.vstack([points, points[:1]])
        axes[1].plot(closed[:, 0], closed[:, 1], "-", color="yellow", linewidth=0.8)
    first = rois[0].coordinates().mean(axis=0)
    axes[1].annotate(rois[0].name, first, color="white", fontsize=7, ha="center")
    axes[1].set_title(f"{name}_rois.zip: {len(rois)} ImageJ polygon ROIs (roifile)", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def table(pred: Path, name: str, rows: int = 5) -> str:
    with (pred / f"{name}_objects.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    columns = [c for c in SHOWN_COLUMNS if c in records[0]]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in records[:rows]:
        cells = []
        for column in columns:
            value = record[column]
            try:
                number = float(value)
                cells.append(f"{number:.3g}" if not number.is_integer() else str(int(number)))
            except ValueError:
                cells.append(value or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n({len(records)} rows in all)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pred", type=Path, help="the folder predict --instances wrote")
    parser.add_argument("name", help="the image's name (the outputs' prefix)")
    parser.add_argument("image", type=Path, help="the input image")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    figure(args.pred, args.name, args.image, args.out)
    print(table(args.pred, args.name))


if __name__ == "__main__":
    main()
