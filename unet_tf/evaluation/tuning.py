"""Choosing the post-processing on the validation images, with an honest score for it.

The separating targets' watersheds each have one setting that decides how many cells
come out (:data:`TUNED`): the boundary target's interior probability above which a
pixel seeds a cell (``interior_threshold``), and the distance and contact targets' height
a maximum of the distance map must stand above its saddle to seed one (``seed_height``).
The choice maximises panoptic quality (PQ: F1 of the cells matched at IoU 0.5 times
their mean IoU), which counts missed, merged, split and spurious cells alike; CTC SEG
counts only how well each reference cell is covered, so choosing by SEG favoured
slivers (on DSB 2018 validation images it chose a seed height with AP@0.5 0.489 where
PQ's choice has 0.501; on HeLa and U373 both choose the same). Choosing and reporting
on the same images would flatter the choice, so the score is cross-fitted: the
validation images are cut into two contiguous halves (time-lapse frames stay in
blocks, as the split keeps them), the value chosen on one half is scored on the
other, and the reverse; the pooled PQ and SEG of both scored halves go in metrics.json.
The value the run keeps is then chosen on all validation images (more data, the
same procedure) and recorded in config.yaml's ``postprocess`` section; a fold
ensemble makes the same choice on its out-of-fold predictions
(:func:`choose_postprocess`, called by :mod:`unet_tf.training.folds`). Under
``--threshold auto`` (the plan's choice) the distance target's foreground threshold is
chosen with its seed height, on the same grid and with the same cross-fitting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from unet_tf.atomic import atomic_write_text
from unet_tf.config import AUTO_THRESHOLD_UNTIL_CHOSEN, PostprocessConfig, RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.objects import ObjectScores, object_scores, reference_instances
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import Predictor, load_predictor
from unet_tf.rundir import CONFIG, METRICS


@dataclass(frozen=True)
class Tuned:
    """A target's post-processing setting that ``fit`` chooses, and the values it tries.

    ``with_threshold``: under ``--threshold auto`` the foreground threshold is chosen
    together with the setting, from :data:`FOREGROUND_THRESHOLDS` (a sigmoid foreground
    channel; a softmax target's arg-max has no threshold).
    """

    setting: str  # a field of PostprocessConfig and InstanceOptions
    candidates: tuple[float, ...]
    with_threshold: bool = False

    @property
    def default(self) -> float:
        """The setting's default, which wins ties, so a flat score keeps it."""
        return getattr(PostprocessConfig(), self.setting)


SEED_HEIGHTS = Tuned("seed_height", (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6), with_threshold=True)
TUNED = {
    "boundary": Tuned("interior_threshold", (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
    "distance": SEED_HEIGHTS,
    "contact": SEED_HEIGHTS,  # the same watershed, on a map damped at contacts
}
# An under-trained DSB 2018 model's foreground spread past the nuclei: AP@0.5 0.388 at
# 0.5 and 0.439 at 0.8 on its validation images; a well-trained U373 model kept 0.5.
FOREGROUND_THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)


def chooses_threshold(target: str, threshold: float | str) -> bool:
    """Whether the post-processing tuning chooses the foreground threshold of this run."""
    tuned = TUNED.get(target)
    return threshold == "auto" and tuned is not None and tuned.with_threshold


Choice = tuple[float, float]  # (foreground threshold, the target's setting)


def _best(table: dict[Choice, list[ObjectScores]], images: range, default: Choice) -> Choice:
    """The choice with the highest pooled PQ on ``images``; ties go nearest the default."""

    def key(choice: Choice) -> tuple[float, float]:
        score = sum((table[choice][i] for i in images), ObjectScores()).scores()["pq"]
        distance = abs(choice[0] - default[0]) + abs(choice[1] - default[1])
        return (-1.0 if np.isnan(score) else score, -distance)

    return max(table, key=key)


def cross_fit(
    predictor: Predictor,
    val: list[Sample],
    tuned: Tuned,
    thresholds: tuple[float, ...] | None = None,
) -> tuple[Choice, ObjectScores]:
    """(threshold, value) chosen on all ``val`` images, and the cross-fitted object scores.

    ``thresholds`` are the foreground thresholds tried with every value of
    ``tuned.setting``; None keeps the predictor's. Each image is predicted once.
    """
    cfg = predictor.cfg
    probs = [predictor.predict(s.image, s.path or s.name) for s in val]
    refs = [reference_instances(s.mask, cfg.data.mask_threshold) for s in val]
    return choose_postprocess(
        probs, refs, cfg, tuned, thresholds or (predictor.threshold,), predictor.threshold
    )


def choose_postprocess(
    probs: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    cfg: RunConfig,
    tuned: Tuned,
    thresholds: tuple[float, ...],
    default_threshold: float,
) -> tuple[Choice, ObjectScores]:
    """(threshold, value) with the best PQ over all predictions, and the cross-fitted scores.

    ``probs`` are predictions of the images whose reference cells are ``refs``: one
    run's validation images, or a fold ensemble's out-of-fold predictions. Every
    choice's cells are scored per image, so the halves and the whole reuse one table;
    ties go to the choice nearest (``default_threshold``, the setting's default).
    """
    choices = [(t, v) for t in thresholds for v in tuned.candidates]

    def row(prob: np.ndarray, ref: np.ndarray) -> list[ObjectScores]:
        """One image's scores under every choice."""
        return [
            object_scores(ref, label_cells(prob, cfg, t, InstanceOptions(**{tuned.setting: v})))
            for t, v in choices
        ]

    # The watersheds and scores are NumPy, SciPy and scikit-image code that mostly runs
    # without the GIL, so threads put every core to work on the images.
    with ThreadPoolExecutor(max_workers=min(len(probs), os.cpu_count() or 1)) as pool:
        rows = list(pool.map(row, probs, refs))
    table = {choice: [r[k] for r in rows] for k, choice in enumerate(choices)}
    default = (default_threshold, tuned.default)
    half = len(probs) // 2
    first, second = range(half), range(half, len(probs))
    crossed = [table[_best(table, first, default)][i] for i in second]
    crossed += [table[_best(table, second, default)][i] for i in first]
    return _best(table, range(len(probs)), default), sum(crossed, ObjectScores())


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def tune_postprocess(
    predictor: Predictor, val: list[Sample], metrics: dict, config_file: Path
) -> tuple[RunConfig, dict]:
    """After ``fit``: the run's config with the chosen post-processing, and its metrics.

    Only the targets in :data:`TUNED` have a setting to choose, and cross-fitting needs
    at least two annotated validation images; otherwise both come back unchanged. The
    chosen config is saved to ``config_file``; ``metrics`` gains a ``postprocess`` entry
    naming the setting (``parameter``) and its value under the setting's own name.
    """
    cfg = predictor.cfg
    annotated = [s for s in val if s.mask is not None]
    tuned = TUNED.get(cfg.data.target)
    joint = chooses_threshold(cfg.data.target, cfg.train.threshold)
    if tuned is None or len(annotated) < 2:
        if joint:  # nothing to choose on: config.yaml records the threshold used
            cfg = replace(cfg, train=replace(cfg.train, threshold=AUTO_THRESHOLD_UNTIL_CHOSEN))
            cfg.save(config_file)
        return cfg, metrics
    thresholds = FOREGROUND_THRESHOLDS if joint else None
    (threshold, chosen), crossed = cross_fit(predictor, annotated, tuned, thresholds)
    cfg = replace(
        cfg,
        train=replace(cfg.train, threshold=threshold) if joint else cfg.train,
        postprocess=replace(cfg.postprocess, **{tuned.setting: chosen}),
    )
    cfg.save(config_file)
    summary = postprocess_summary(tuned, chosen, crossed, threshold if joint else None)
    if joint:
        metrics = {**metrics, "threshold": threshold}
    return cfg, {**metrics, "postprocess": summary}


def postprocess_summary(
    tuned: Tuned, chosen: float, crossed: ObjectScores, threshold: float | None = None
) -> dict:
    """What was chosen and its cross-fitted scores, as metrics.json and ensemble.json
    record it; ``threshold`` when the foreground threshold was chosen with it."""
    summary = {
        "parameter": tuned.setting,
        tuned.setting: chosen,
        "candidates": list(tuned.candidates),
        "objective": "pq",
        "pq_crossfit": _finite(crossed.scores()["pq"]),
        "seg_crossfit": _finite(crossed.seg.score),
        "objects": crossed.counts(),
    }
    if threshold is not None:
        summary["threshold"] = threshold
        summary["threshold_candidates"] = list(FOREGROUND_THRESHOLDS)
    return summary


def retune(run_dir: Path, val: list[Sample], log: Callable[[str], None] = print) -> RunConfig:
    """Choose a finished run's post-processing again, as ``fit`` does at its end.

    For a run trained before the post-processing changed, or to choose on other
    annotated images: the network is not retrained. A run whose threshold was chosen
    on validation (``auto`` in the plan) chooses it again with the watershed setting.
    ``config.yaml`` and ``metrics.json`` (its ``postprocess`` entry and ``threshold``) are
    rewritten, each atomically.
    """
    predictor = load_predictor(run_dir)
    cfg = predictor.cfg
    metrics = json.loads((run_dir / METRICS).read_text())
    if metrics.get("postprocess", {}).get("threshold") is not None:
        cfg = replace(cfg, train=replace(cfg.train, threshold="auto"))
    cfg, metrics = tune_postprocess(
        Predictor(predictor.network, cfg), val, metrics, run_dir / CONFIG
    )
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=2))
    log(f"post-processing of {run_dir} chosen again: {metrics.get('postprocess')}")
    return cfg
