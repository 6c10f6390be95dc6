"""What a score was computed on: the training record of a run, and an evaluation's provenance.

A Dice is only worth publishing with what it measured. At the end of ``fit`` the run
records the content of every training and validation image (``data.json``: a sha256
of the pixels, so a copy under another name or in another file format is still
recognised); ``evaluate`` checks the scored images against it and says which of them
the model has already seen. Every evaluation also records the model file's sha256,
the version, the threshold, how the network was applied and which images were scored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from unet_tf import __version__
from unet_tf.atomic import atomic_write_text
from unet_tf.data.sample import Sample
from unet_tf.inference.predictor import Predictor
from unet_tf.rundir import MODEL, TRAINING_DATA

HASH_CHUNK = 1 << 20


def image_hash(image: np.ndarray) -> str:
    """sha256 of the pixels with their shape and dtype: equal for equal image content."""
    pixels = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{pixels.shape}{pixels.dtype.str}".encode())
    digest.update(pixels.tobytes())
    return digest.hexdigest()


def write_training_record(run_dir: Path, train: list[Sample], val: list[Sample]) -> Path:
    """Write ``data.json``: name and content hash of each training and validation image."""
    record = {
        role: [{"name": s.name, "sha256": image_hash(s.image)} for s in samples]
        for role, samples in (("train", train), ("val", val))
    }
    path = Path(run_dir) / TRAINING_DATA
    atomic_write_text(path, json.dumps(record, indent=1))
    return path


def training_hashes(model_path: Path | None) -> set[str] | None:
    """Content hashes of the images a run trained on; None when there is no record.

    ``model_path`` is what ``evaluate`` was given: a run directory or the ``model.keras``
    inside one. Exports carry no record.
    """
    if model_path is None:
        return None
    run_dir = Path(model_path) if Path(model_path).is_dir() else Path(model_path).parent
    path = run_dir / TRAINING_DATA
    if not path.is_file():
        return None
    try:
        return {entry["sha256"] for entry in json.loads(path.read_text())["train"]}
    except (ValueError, KeyError, TypeError):
        return None


def seen_in_training(samples: list[Sample], hashes: set[str] | None) -> list[str]:
    """Names of the samples whose pixels are those of a training image."""
    if not hashes:
        return []
    return [s.name for s in samples if image_hash(s.image) in hashes]


def model_file(model_path: Path) -> Path:
    """The file whose bytes are the model: ``model.keras``, ``saved_model.pb`` or the export."""
    path = Path(model_path)
    if path.is_dir():
        return path / MODEL if (path / MODEL).exists() else path / "saved_model.pb"
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inference_settings(predictor: Predictor) -> dict:
    """How the network was applied: the words of ``describe()`` and the options behind them."""
    o = predictor.options
    return {
        "description": predictor.describe(),
        "resize_to": (predictor.cfg.input_size if o.resize else predictor.resize_to)
        if predictor.resizes
        else None,
        "tile": None if predictor.resizes else predictor.tile,
        # px: each image rescaled so its objects are this size (fit --object-size)
        "object_size": None if predictor.resizes else predictor.cfg.data.object_size,
        "overlap": o.overlap,
        "blend": o.blend,
        "tta": o.tta,
    }


def evaluation_provenance(
    model_path: Path | None,
    predictor: Predictor,
    data: Path,
    fmt: str,
    subset: str,
    samples: list[Sample],
    trained_on: list[str],
    checked: bool,
) -> dict:
    """Everything needed to say what a set of scores measured (for ``--json`` and reports)."""
    model = model_file(model_path) if model_path is not None else None
    return {
        "model": str(model_path) if model_path is not None else None,
        "model_file": str(model) if model is not None and model.is_file() else None,
        "model_sha256": file_sha256(model) if model is not None and model.is_file() else None,
        "unet_tf_version": __version__,
        "threshold": predictor.threshold,
        "inference": inference_settings(predictor),
        "data": str(data),
        "format": fmt,
        "subset": subset,
        "images": [s.name for s in samples],
        "used_in_training": trained_on,
        # whether the run's data.json was there to compare the images' content with
        "checked_against_training_record": checked,
    }
