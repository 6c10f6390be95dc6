"""Objects for Fiji, napari and QuPath: label TIFF, ROI zip, object CSV, outline overlay."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import roifile
import tifffile
from PIL import Image

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import Predictor
from unet_tf.inference.video import predict_video
from unet_tf.inference.writers import (
    collect_inputs,
    output_paths,
    predict_to_files,
    write_instances,
)
from unet_tf.viz import panel


def two_squares() -> tuple[np.ndarray, np.ndarray]:
    """Labels of a 4x5 square (label 1) and a 6x6 square (label 2), and a 2-channel image."""
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:8] = 1
    labels[10:16, 20:26] = 2
    image = np.zeros((20, 30, 2), np.uint16)
    image[..., 0] = labels * 10  # channel 0: 10 inside object 1, 20 inside object 2
    image[..., 1] = 7
    return labels, image


def test_label_tiff_rois_and_csv(tmp_path):
    labels, image = two_squares()
    sample = Sample(name="cells", image=image, path="cells.tif", pixel_size=(0.5, 0.25))
    write_instances(tmp_path, sample, labels)
    paths = output_paths(tmp_path, "cells", 1, instances=True)

    with tifffile.TiffFile(paths["labels"]) as tif:
        np.testing.assert_array_equal(tif.asarray(), labels)
        assert tif.asarray().dtype == np.uint16 and tif.is_imagej
        assert tif.imagej_metadata["unit"] == "um"
        x_res, y_res = tif.pages[0].get_resolution()
        assert (1 / y_res, 1 / x_res) == pytest.approx((0.5, 0.25))

    rois = roifile.roiread(paths["rois"])
    assert len(rois) == 2 and len(zipfile.ZipFile(paths["rois"]).namelist()) == 2
    for roi, (top, left, bottom, right) in zip(rois, [(2, 3, 6, 8), (10, 20, 16, 26)], strict=True):
        xy = roi.coordinates()
        assert roi.roitype == roifile.ROI_TYPE.POLYGON
        assert xy.min(axis=0) == pytest.approx((left, top))
        assert xy.max(axis=0) == pytest.approx((right, bottom))

    with paths["objects"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["label"]) for r in rows] == [1, 2]
    first, second = rows
    assert int(first["area_px"]) == 20 and float(first["area_um2"]) == pytest.approx(20 * 0.125)
    assert int(second["area_px"]) == 36 and float(second["area_um2"]) == pytest.approx(4.5)
    assert float(first["centroid_y_px"]) == 3.5 and float(first["centroid_x_px"]) == 5.0
    assert [first[k] for k in ("bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col")] == [
        "2", "3", "6", "8",
    ]  # fmt: skip
    assert float(second["eccentricity"]) == pytest.approx(0.0, abs=1e-9)  # a square
    assert float(first["solidity"]) == 1.0
    assert float(first["mean_intensity_ch0"]) == 10 and float(second["mean_intensity_ch0"]) == 20
    assert float(second["mean_intensity_ch1"]) == 7


def test_without_pixel_size_the_um_area_is_empty(tmp_path):
    labels, image = two_squares()
    write_instances(tmp_path, Sample(name="c", image=image), labels)
    with (tmp_path / "c_objects.csv").open() as handle:
        assert [r["area_um2"] for r in csv.DictReader(handle)] == ["", ""]
    with tifffile.TiffFile(tmp_path / "c_labels.tif") as tif:
        assert tif.asarray().dtype == np.uint16


def test_instance_overlay_outlines_objects_in_their_own_colours():
    labels, image = two_squares()
    binary = panel(image, labels > 0)
    objects = panel(image, labels > 0, labels=labels)
    assert binary.shape == objects.shape
    assert not np.array_equal(binary, objects)
    width = image.shape[1]
    overlay = objects[-20:, -width:]  # the last tile, below its title strip
    assert not np.array_equal(overlay[2, 3], overlay[10, 20])  # two objects, two colours


def threshold_predictor() -> Predictor:
    """A stand-in network: probability 1 where the grey value is above 127."""
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.data.patch = 1, 2, 64
    return Predictor(lambda batch: (batch[..., :1] > 127).astype(np.float32), cfg)


def test_video_and_its_frames_count_objects_alike(tmp_path):
    """Diagonal neighbours and an object in another's hole: counted the same both ways."""
    frames = np.zeros((3, 32, 32), np.uint8)
    frames[0, 2:6, 2:6] = frames[0, 6:10, 6:10] = 255  # touching at a corner only
    frames[1, 4:20, 4:20] = 255
    frames[1, 8:16, 8:16] = 0
    frames[1, 11:13, 11:13] = 255  # a speck inside the hole
    frames[2, 20:30, 1:30] = 255
    tifffile.imwrite(tmp_path / "movie.tif", frames, photometric="minisblack")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i}.png")

    predictor = threshold_predictor()
    written = predict_video(predictor, tmp_path / "movie.tif", tmp_path / "v", instances=None)
    with written["areas"].open() as handle:
        video_counts = [int(r["objects"]) for r in csv.DictReader(handle)]
    samples = collect_inputs([folder])
    out = tmp_path / "f"
    frame_counts = [
        p.objects for p in predict_to_files(predictor, samples, out, instances=InstanceOptions())
    ]
    assert video_counts == frame_counts
