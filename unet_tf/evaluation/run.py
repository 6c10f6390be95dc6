"""What ``evaluate`` scores a model on, and how: the rules for choosing data and measures.

A score is only honest if the model never saw the images. So without ``--data`` (or
with the run's own ``--data``) ``evaluate`` scores the run's *validation* images: the
recorded ``val_names`` of its split, its ``--val`` folder, or its CTC
``--val-sequences``; ``--subset train`` or ``all`` asks for the others knowingly.
Another ``--data`` is scored whole. Whatever is scored is checked against the content
hashes the run recorded of its training images (``data.json``), and a one-line warning
names the scored images the model was trained on, even renamed or re-saved copies.

SEG, the Cell Tracking Challenge's own measure, is reported on CTC data even without
``--instances``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from unet_tf.config import DataConfig
from unet_tf.data.checks import warn
from unet_tf.data.formats.ctc import validation_config
from unet_tf.data.formats.registry import data_root, read_dataset, resolve_format
from unet_tf.data.sample import Sample
from unet_tf.data.splits import SUBSETS, split_samples
from unet_tf.data.targets import is_separating
from unet_tf.errors import UserError, list_some
from unet_tf.evaluation.provenance import (
    evaluation_provenance,
    seen_in_training,
    training_hashes,
)
from unet_tf.evaluation.scoring import Evaluation, evaluate_samples
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import Predictor


@dataclass(frozen=True)
class EvaluationPlan:
    """The samples to score, the predictor that carries the data settings, and provenance.

    ``predictor`` is the loaded one with its config replaced by the evaluation's, so the
    scores and a report written from it (which reads ``predictor.cfg``) agree.
    ``trained_on`` names the scored images the model was trained on.
    """

    predictor: Predictor
    root: Path
    samples: list[Sample]
    instances: InstanceOptions | None
    subset: str = "all"
    trained_on: tuple[str, ...] = ()
    provenance: dict | None = None

    def run(self, on_image: Callable[[Sample, np.ndarray], None] | None = None) -> Evaluation:
        """Predict and score every sample; ``on_image`` sees each one's probabilities."""
        return evaluate_samples(
            self.predictor, self.samples, on_image=on_image, instances=self.instances
        )


def plan_evaluation(
    predictor: Predictor,
    data: Path | None = None,
    fmt: str = "auto",
    mask_threshold: float | None = None,
    instances: InstanceOptions | None = None,
    subset: str | None = None,
    model_path: Path | None = None,
) -> EvaluationPlan:
    """Choose and read the annotated images to score ``predictor`` on.

    ``data`` defaults to the data the run trained on, and ``subset`` then to ``val``;
    with another ``data``, all of it is scored. ``fmt`` and ``mask_threshold`` override
    the run's data settings. ``model_path`` (a run directory or its ``model.keras``)
    locates the run's record of its training images, for the warning and provenance.
    The loaded predictor is left as it is: the plan holds a new one with a new config.
    """
    run_data = predictor.cfg.data
    trained_root = data_root(run_data)
    own = data is None or Path(data).resolve() == trained_root.resolve()
    subset = subset or ("val" if own else "all")
    if subset not in SUBSETS:
        raise UserError(f"--subset must be one of {', '.join(SUBSETS)}, not {subset!r}")
    if not own and subset != "all":
        raise UserError(
            f"--subset {subset} picks images of the data the run trained on ({trained_root}); "
            f"leave out --data, or use --subset all to score {data}"
        )
    root = trained_root if own else Path(data)
    data_cfg = replace(
        run_data,
        format=fmt if fmt != "auto" or not own else run_data.format,
        mask_threshold=run_data.mask_threshold if mask_threshold is None else mask_threshold,
    )
    if own:
        train, val = own_split(root, data_cfg)
        samples = {"val": val, "train": train, "all": train + val}[subset]
    else:
        samples = read_dataset(root, replace(data_cfg, sequences=None, val_sequences=None))
    if not samples:
        raise UserError(
            f"the run recorded no {subset} images: it trained on all of {root}; pass --data "
            "with images it has not seen, or --subset all to score its training images"
        )
    hashes = training_hashes(model_path)
    if hashes is None and own:  # a run from before data.json: its split still tells
        trained_on = [s.name for s in samples if s.name in {t.name for t in train}]
    else:
        trained_on = seen_in_training(samples, hashes)
    if trained_on:
        warn(
            f"{len(trained_on)} of the {len(samples)} scored image(s) were used to train "
            f"this model ({list_some(trained_on)}); their scores are optimistic"
        )
    detected = resolve_format(root, data_cfg.format)
    if instances is None and (detected == "ctc" or is_separating(data_cfg.target)):
        instances = InstanceOptions()  # the CTC's own measure is SEG; the target makes cells
    scorer = Predictor(
        predictor.network,
        replace(predictor.cfg, data=data_cfg),
        predictor.options,
        predictor.history,
    )
    provenance = evaluation_provenance(
        model_path, scorer, root, detected, subset, samples, trained_on, hashes is not None
    )
    return EvaluationPlan(scorer, root, samples, instances, subset, tuple(trained_on), provenance)


def own_split(root: Path, cfg: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """The run's training and validation images, drawn as ``fit`` drew them.

    From its ``--val`` folder, its CTC ``--val-sequences``, or its recorded
    ``val_names`` (with the blocked split's gap left out of training); a run without
    any of these trained on everything and has no validation images.
    """
    if cfg.val_sequences:
        train = read_dataset(root, cfg)
        return train, read_dataset(root, validation_config(cfg))
    train = read_dataset(root, cfg)
    if cfg.val:
        return train, read_dataset(cfg.val, cfg)
    if not cfg.val_names:
        return train, []
    split = cfg.split if cfg.split != "auto" else "random"  # runs before blocked splits
    return split_samples(train, replace(cfg, split=split))
