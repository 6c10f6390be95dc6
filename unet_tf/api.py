"""The notebook API: build, train, load, predict and evaluate in a few lines.

Everything here is a thin front for the stage packages, so a notebook and the
``unet-tf`` command line run the same code::

    import unet_tf

    model = unet_tf.Unet("vgg16", input_shape=(None, None, 1), encoder_weights=None)
    result = unet_tf.fit(data="my_data/", epochs=20, run_dir="runs/exp1")
    predictor = unet_tf.load_model("runs/exp1")
    probabilities = predictor.predict(image)            # or a batch
    scores = unet_tf.evaluate("runs/exp1", "my_test_data/")

See docs/api.md for a walk-through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import read_dataset
from unet_tf.data.pipeline import make_dataset, prepare
from unet_tf.evaluation.scoring import Evaluation, evaluate_samples
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import InferenceOptions, Predictor, config_for, load_predictor
from unet_tf.planning import Plan, parse_duration, plan_dataset
from unet_tf.planning.recipe import changed_settings, fit_config, setting_path
from unet_tf.rundir import default_run_dir
from unet_tf.training.fit import FitResult
from unet_tf.training.fit import fit as fit_run
from unet_tf.training.folds import FoldsResult, fit_folds
from unet_tf.training.tune import SearchSpace, TuneResult
from unet_tf.training.tune import tune as run_tune

Model = Predictor | keras.Model | str | Path


def load_model(path: str | Path, **options: Any) -> Predictor:
    """A run directory, a ``.keras`` file, a SavedModel, ``.onnx`` or ``.tflite`` export.

    Returns a :class:`~unet_tf.inference.predictor.Predictor`: the network (``.network``,
    the Keras model where there is one) with what its run recorded (training size,
    channels, threshold), so ``.predict`` applies it the way it was trained.
    ``options`` are :class:`~unet_tf.inference.predictor.InferenceOptions` fields
    (``tile``, ``overlap``, ``tta``, ``threshold``...).
    """
    return load_predictor(Path(path), InferenceOptions(**options))


def as_predictor(model: Model, **options: Any) -> Predictor:
    """A predictor for a path, a loaded predictor, or an in-memory Keras model."""
    if isinstance(model, Predictor):
        return (
            model
            if not options
            else Predictor(model.network, model.cfg, InferenceOptions(**options))
        )
    if isinstance(model, keras.Model):
        return Predictor(model, config_for(model), InferenceOptions(**options))
    return load_model(model, **options)


def predict(
    model: Model, images: np.ndarray | Sequence[np.ndarray], **options: Any
) -> np.ndarray | list[np.ndarray]:
    """Probabilities for one raw image (H, W[, C]) or a batch, at the images' own size."""
    return as_predictor(model, **options).predict(images)


def evaluate(
    model: Model, data: str | Path, instances: bool | InstanceOptions = False, **options: Any
) -> Evaluation:
    """Score ``model`` on an annotated dataset (any layout ``unet-tf`` reads).

    Scores are computed at full resolution, per image and dataset-wide; see
    :class:`~unet_tf.evaluation.scoring.Evaluation` (``.table()``, ``.summary()``).
    ``instances=True`` (or ``InstanceOptions``, as ``--instances``) also scores the
    cells: SEG, AP at IoU 0.5, mean AP over 0.5-0.95, F1, PQ, splits and merges.
    """
    predictor = as_predictor(model, **options)
    samples = read_dataset(Path(data), predictor.cfg.data)
    objects = InstanceOptions() if instances is True else instances or None
    return evaluate_samples(predictor, samples, instances=objects)


def configure(config: RunConfig | None = None, **settings: Any) -> RunConfig:
    """A new config: ``config`` (default: the defaults) with ``settings`` applied by name.

    Each setting names a field of one section (``epochs=20``, ``backbone="vgg16"``,
    ``data="my_data/"``); ``config`` itself is not changed.
    """
    cfg = config or RunConfig()
    sections = {"model": cfg.model, "data": cfg.data, "train": cfg.train}
    changes: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in settings.items():
        owners = [n for n, s in sections.items() if key in {f.name for f in dataclasses.fields(s)}]
        if len(owners) != 1:
            raise TypeError(f"{key!r} is not a setting of RunConfig.model, .data or .train")
        changes[owners[0]][key] = str(value) if isinstance(value, Path) else value
    return dataclasses.replace(
        cfg, **{name: dataclasses.replace(sections[name], **changes[name]) for name in sections}
    )


def _seconds(budget: str | float | None) -> float | None:
    """A budget as seconds: "20m", "1h30m", or a number of seconds."""
    if budget is None:
        return None
    return parse_duration(budget) if isinstance(budget, str) else float(budget)


def fit(
    config: RunConfig | None = None,
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    verbose: int = 2,
    plan: bool = True,
    budget: str | float | None = None,
    all_folds: bool = False,
    **settings: Any,
) -> FitResult | FoldsResult:
    """Train as ``unet-tf fit`` does and write a run directory; rerun to resume.

    ``settings`` override fields of ``config`` by name (see :func:`configure`).
    Without ``size`` or ``patch`` (given, or changed in ``config``) the recipe is
    planned from the data, as ``unet-tf fit`` does; what you set wins over the plan,
    and ``plan=False`` keeps the fixed defaults. ``budget`` ("20m", or seconds) trains
    to a wall-clock time. The result holds the run directory, the validation metrics
    and the resolved config.

    ``all_folds=True`` with ``folds=K`` trains a fold ensemble, as ``fit --all-folds``
    does (the budget covers all folds), and returns its
    :class:`~unet_tf.training.folds.FoldsResult`.
    """
    cfg = configure(config, **settings)
    explicit = changed_settings(config) if config else set()
    explicit |= {path for path in map(setting_path, settings) if path}
    if budget is not None:
        train = dataclasses.replace(cfg.train, budget_seconds=_seconds(budget))
        cfg = dataclasses.replace(cfg, train=train)
        explicit.add("train.budget_seconds")
    target = Path(run_dir) if run_dir else None
    cfg = fit_config(cfg, explicit, plan, target, overwrite, log=print, all_folds=all_folds)
    if all_folds:
        return fit_folds(cfg, target or default_run_dir(), cfg.data.folds, overwrite, verbose)
    return fit_run(cfg, target, overwrite, verbose=verbose)


def plan(
    data: str | Path | None = None,
    budget: str | float | None = None,
    config: RunConfig | None = None,
    **settings: Any,
) -> Plan:
    """The recipe ``unet-tf plan`` derives from ``data``'s fingerprint, with its reasons.

    ``Plan.to_config()`` is the config to train (``fit(plan.to_config())``);
    ``Plan.reasons`` says why each setting was chosen. With a ``budget`` the planned
    network's steps and validation are timed on this machine.
    """
    base = configure(config, **({"data": str(data)} if data is not None else {}), **settings)
    return plan_dataset(base, _seconds(budget))


def tune(
    data: str | Path,
    run_dir: str | Path,
    max_trials: int = 10,
    budget: str | float | None = None,
    tuner: str = "bayesian",
    space: SearchSpace | None = None,
    config: RunConfig | None = None,
    **settings: Any,
) -> TuneResult:
    """Search the recipe with KerasTuner, as ``unet-tf tune`` does; rerun to resume.

    Every trial is a run directory under ``run_dir``, scored by its validation Dice at
    full resolution; ``run_dir/best.yaml`` is the best trial's config for :func:`fit`.
    """
    base = configure(config, data=str(data), **settings)
    return run_tune(base, Path(run_dir), max_trials, _seconds(budget), tuner, space)


def folder_dataset(
    path: str | Path,
    training: bool = True,
    config: RunConfig | None = None,
    **settings: Any,
) -> tf.data.Dataset:
    """A folder of annotated images (any layout) as a ``tf.data.Dataset`` for ``model.fit``.

    Yields ``(image, target)`` batches (and per-pixel weights where the data has a
    field of view), prepared exactly as ``unet-tf fit`` prepares them: resized to
    ``size`` (or cropped to ``patch``), augmented when ``training``. A training
    dataset repeats forever, so pass ``steps_per_epoch`` to ``model.fit``.
    """
    cfg = configure(config, data=str(path), **settings)
    samples = read_dataset(Path(path), cfg.data)
    return make_dataset(prepare(samples, cfg, cfg.resize_to), cfg, training)
