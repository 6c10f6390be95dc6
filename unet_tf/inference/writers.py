"""Writing predictions to disk without clobbering anything: masks, probabilities, panels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tifffile

from unet_tf.atomic import atomic_path
from unet_tf.data.formats.dsb import is_dsb_dataset, read_dsb
from unet_tf.data.formats.folder import is_folder_dataset, list_images, read_folder
from unet_tf.data.io import (
    IMAGE_SUFFIXES,
    is_image_file,
    read_image_and_pixel_size,
    select_channels,
    to_channels,
    write_png,
)
from unet_tf.data.sample import Sample
from unet_tf.data.targets import scored_classes, truth_labels
from unet_tf.errors import UserError, list_some
from unet_tf.inference.objects import (
    check_label_range,
    write_label_tiff,
    write_object_table,
    write_rois,
)
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import Predictor, binary_mask, to_mask
from unet_tf.rundir import check_new_outputs
from unet_tf.runtime.progress import progress
from unet_tf.viz import panel


def with_channels(predictor: Predictor, channels: list[int] | None) -> Predictor:
    """``predictor`` reading the given image channels instead of the run's (``--channels``).

    None keeps the channels the run was trained on (``data.channels`` in config.yaml).
    """
    if channels is None:
        return predictor
    cfg = replace(predictor.cfg, data=replace(predictor.cfg.data, channels=channels))
    cfg.validate()
    return Predictor(predictor.network, cfg, predictor.options, predictor.history)


def collect_inputs(inputs: list[Path], channels: list[int] | None = None) -> list[Sample]:
    """Images from files and folders; a folder with ``images/`` + ``masks/`` brings its truth.

    A DSB 2018 folder (``<id>/images/<id>.png``, as ``stage1_test/`` is shipped) gives
    its images named by id, with their nucleus masks where there are any, read the
    way ``fit`` reads them (a mixed set's colour images as grey).

    ``channels`` picks image channels (counted from 0), as the run's ``data.channels``.
    """
    samples: list[Sample] = []
    for path in inputs:
        if not path.exists():
            raise UserError(f"input not found: {path}")
        if path.is_dir() and is_folder_dataset(path):
            samples += read_folder(path, require_masks=False)
        elif path.is_dir() and is_dsb_dataset(path):
            samples += read_dsb(path, require_masks=False)
        elif path.is_dir():
            files = list_images(path)
            if not files:
                raise UserError(f"no images in {path}; pass image files or a folder of images")
            samples += [_sample(f) for f in files]
        elif is_image_file(path):
            samples.append(_sample(path))
        else:
            kinds = ", ".join(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
            raise UserError(f"{path} is not an image ({kinds})")
    names = [s.name for s in samples]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise UserError(f"several inputs are named {list_some(clashes)}; outputs would collide")
    if channels is None:
        return samples
    return [replace(s, image=select_channels(s.image, channels, s.path)) for s in samples]


def _sample(path: Path) -> Sample:
    image, pixel_size = read_image_and_pixel_size(path)
    return Sample(name=path.stem, image=to_channels(image), path=str(path), pixel_size=pixel_size)


def output_paths(out: Path, name: str, classes: int, instances: bool = False) -> dict[str, Path]:
    prob = f"{name}_prob.png" if classes == 1 else f"{name}_prob.tif"
    paths = {
        "mask": out / f"{name}_mask.png",
        "prob": out / prob,
        "panel": out / f"{name}_overlay.png",
    }
    if instances:  # for Fiji, napari and QuPath: see unet_tf.inference.objects
        paths["labels"] = out / f"{name}_labels.tif"
        paths["rois"] = out / f"{name}_rois.zip"
        paths["objects"] = out / f"{name}_objects.csv"
    return paths


def check_free(
    out: Path, samples: list[Sample], classes: int, overwrite: bool, instances: bool = False
) -> None:
    """Refuse to replace existing outputs unless asked to (the one output guard)."""
    paths = [p for s in samples for p in output_paths(out, s.name, classes, instances).values()]
    check_new_outputs(paths, "--out", overwrite)


def write_prediction(
    out: Path,
    sample: Sample,
    probs: np.ndarray,
    predictor: Predictor,
    truth: np.ndarray | None,
    labels: np.ndarray | None = None,
) -> None:
    """Binary (or label) mask PNG, probability map, and the four-tile panel.

    With object ``labels`` the panel's overlay outlines the objects instead of the mask,
    and a binary mask is the objects' pixels (holes filled, specks dropped), so the mask
    PNG and the label TIFF never disagree.
    """
    paths = output_paths(out, sample.name, probs.shape[-1])
    target = predictor.cfg.data.target
    pred = to_mask(probs, predictor.threshold, target)
    binary = binary_mask(probs.shape[-1], target)
    if binary and labels is not None:
        pred = (labels > 0).astype(pred.dtype)
    write_png(paths["mask"], (pred * 255).astype(np.uint8) if binary else pred)
    if probs.shape[-1] == 1:
        write_png(paths["prob"], np.round(np.clip(probs[..., 0], 0, 1) * 65535).astype(np.uint16))
    else:
        with atomic_path(paths["prob"]) as tmp:
            tifffile.imwrite(tmp, probs.astype(np.float32))
    write_png(paths["panel"], panel(sample.image, pred, truth, labels))


def write_instances(out: Path, sample: Sample, labels: np.ndarray) -> None:
    """The objects as a label TIFF, an ImageJ ROI zip and a per-object CSV."""
    paths = output_paths(out, sample.name, 1, instances=True)
    write_label_tiff(paths["labels"], labels, sample.pixel_size)
    write_rois(paths["rois"], labels)
    write_object_table(paths["objects"], labels, sample.image, sample.pixel_size)


@dataclass(frozen=True)
class WrittenPrediction:
    """One image's prediction, as written by :func:`predict_to_files`, for its caller to report.

    The labels are kept so that the caller can score them (the scores live a layer up,
    in ``unet_tf.evaluation``) without predicting again.
    """

    name: str
    pred: np.ndarray  # (H, W) labels at the predictor's threshold
    truth: np.ndarray | None  # the same labels from the input's own mask, if it has one
    classes: int
    objects: int | None  # the number of objects, with instances


def predict_to_files(
    predictor: Predictor,
    samples: list[Sample],
    out: Path,
    overwrite: bool = False,
    instances: InstanceOptions | None = None,
) -> Iterator[WrittenPrediction]:
    """Predict each sample and write its mask, probabilities, panel (and object labels).

    Existing outputs are refused before anything is predicted, unless ``overwrite``;
    then one image is predicted and written per step of the returned iterator, so the
    caller can report progress as it goes.
    """
    classes = predictor.cfg.model.num_classes
    check_free(out, samples, classes, overwrite, instances is not None)
    return _predict_each(predictor, samples, out, instances)


def _predict_each(
    predictor: Predictor, samples: list[Sample], out: Path, instances: InstanceOptions | None
) -> Iterator[WrittenPrediction]:
    classes = scored_classes(predictor.cfg.model.num_classes, predictor.cfg.data.target)
    for sample in progress(samples, desc="predict", unit="image"):
        probs = predictor.predict(sample.image, sample.path)
        pred = to_mask(probs, predictor.threshold, predictor.cfg.data.target)
        truth = None
        if sample.mask is not None:
            truth = truth_labels(
                sample.mask, classes, predictor.cfg.data.mask_threshold, sample.path
            )
        labels, objects = None, None
        if instances is not None:
            labels = label_cells(probs, predictor.cfg, predictor.threshold, instances)
            check_label_range(labels, sample.name)
            write_instances(out, sample, labels)
            objects = int(labels.max(initial=0))
        write_prediction(out, sample, probs, predictor, truth, labels)
        yield WrittenPrediction(sample.name, pred, truth, classes, objects)
