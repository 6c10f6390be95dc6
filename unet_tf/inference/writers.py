"""Writing predictions to disk without clobbering anything: masks, probabilities, panels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from unet_tf.atomic import atomic_path
from unet_tf.data.formats.folder import is_folder_dataset, list_images, read_folder
from unet_tf.data.io import is_image_file, read_image, to_channels, write_png
from unet_tf.data.sample import Sample
from unet_tf.data.targets import truth_labels
from unet_tf.errors import UserError, list_some
from unet_tf.inference.postprocess import InstanceOptions, label_instances
from unet_tf.inference.predictor import Predictor, to_mask
from unet_tf.rundir import check_new_outputs
from unet_tf.viz import panel


def collect_inputs(inputs: list[Path]) -> list[Sample]:
    """Images from files and folders; a folder with ``images/`` + ``masks/`` brings its truth."""
    samples: list[Sample] = []
    for path in inputs:
        if not path.exists():
            raise UserError(f"input not found: {path}")
        if path.is_dir() and is_folder_dataset(path):
            samples += read_folder(path, require_masks=False)
        elif path.is_dir():
            files = list_images(path)
            if not files:
                raise UserError(f"no images in {path}; pass image files or a folder of images")
            samples += [_sample(f) for f in files]
        elif is_image_file(path):
            samples.append(_sample(path))
        else:
            raise UserError(f"{path} is not an image (png, jpg, tif, gif or bmp)")
    names = [s.name for s in samples]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise UserError(f"several inputs are named {list_some(clashes)}; outputs would collide")
    return samples


def _sample(path: Path) -> Sample:
    return Sample(name=path.stem, image=to_channels(read_image(path)), path=str(path))


def output_paths(out: Path, name: str, classes: int, instances: bool = False) -> dict[str, Path]:
    prob = f"{name}_prob.png" if classes == 1 else f"{name}_prob.tif"
    paths = {
        "mask": out / f"{name}_mask.png",
        "prob": out / prob,
        "panel": out / f"{name}_overlay.png",
    }
    if instances:
        paths["instances"] = out / f"{name}_instances.png"
    return paths


def check_free(
    out: Path, samples: list[Sample], classes: int, overwrite: bool, instances: bool = False
) -> None:
    """Refuse to replace existing outputs unless asked to (the one output guard)."""
    paths = [p for s in samples for p in output_paths(out, s.name, classes, instances).values()]
    check_new_outputs(paths, "--out", overwrite)


def write_prediction(
    out: Path, sample: Sample, probs: np.ndarray, predictor: Predictor, truth: np.ndarray | None
) -> None:
    """Binary (or label) mask PNG, probability map, and the four-tile panel."""
    paths = output_paths(out, sample.name, probs.shape[-1])
    pred = to_mask(probs, predictor.threshold)
    write_png(paths["mask"], (pred * 255).astype(np.uint8) if probs.shape[-1] == 1 else pred)
    if probs.shape[-1] == 1:
        write_png(paths["prob"], np.round(np.clip(probs[..., 0], 0, 1) * 65535).astype(np.uint16))
    else:
        with atomic_path(paths["prob"]) as tmp:
            tifffile.imwrite(tmp, probs.astype(np.float32))
    write_png(paths["panel"], panel(sample.image, pred, truth))


def write_instances(out: Path, name: str, labels: np.ndarray) -> None:
    """Object labels as a 16-bit PNG (0 = background, 1..N one per object)."""
    if labels.max() > np.iinfo(np.uint16).max:
        raise UserError(f"{name} has {labels.max()} objects, more than a 16-bit PNG can label")
    write_png(out / f"{name}_instances.png", labels.astype(np.uint16))


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
    classes = predictor.cfg.model.num_classes
    for sample in samples:
        probs = predictor.predict(sample.image, sample.path)
        pred = to_mask(probs, predictor.threshold)
        truth = None
        if sample.mask is not None:
            truth = truth_labels(
                sample.mask, classes, predictor.cfg.data.mask_threshold, sample.path
            )
        write_prediction(out, sample, probs, predictor, truth)
        objects = None
        if instances is not None:
            labels = label_instances(pred > 0, instances)
            write_instances(out, sample.name, labels)
            objects = int(labels.max())
        yield WrittenPrediction(sample.name, pred, truth, classes, objects)
