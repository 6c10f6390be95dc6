"""Choosing the post-processing on the validation images, with an honest score for it.

The separating targets' watersheds each have one setting that decides how many cells
come out (:data:`TUNED`): the boundary target's interior probability above which a
pixel seeds a cell (``interior_threshold``), and the distance target's height a
maximum of the distance map must stand above its saddle to seed one (``seed_height``).
Choosing it by SEG on the validation images and reporting that SEG would score the
same images twice, and flatter the choice. So the score is cross-fitted: the
validation images are cut into two contiguous halves (time-lapse frames stay in
blocks, as the split keeps them), the value chosen on one half is scored on the
other, and the reverse; the pooled SEG of both scored halves goes in metrics.json.
The value the run keeps is then chosen on all validation images (more data, the
same procedure) and recorded in config.yaml's ``postprocess`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from unet_tf.config import PostprocessConfig, RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.objects import SegResult, reference_instances, seg_measure
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import Predictor


@dataclass(frozen=True)
class Tuned:
    """A target's post-processing setting that ``fit`` chooses, and the values it tries."""

    setting: str  # a field of PostprocessConfig and InstanceOptions
    candidates: tuple[float, ...]

    @property
    def default(self) -> float:
        """The setting's default, which wins ties, so a flat score keeps it."""
        return getattr(PostprocessConfig(), self.setting)


TUNED = {
    "boundary": Tuned("interior_threshold", (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
    "distance": Tuned("seed_height", (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)),
}


def _pooled(results: list[SegResult]) -> SegResult:
    total = SegResult()
    for result in results:
        total = total + result
    return total


def _best(table: dict[float, list[SegResult]], images: range, default: float) -> float:
    """The candidate with the highest pooled SEG on ``images``; ties go to the default."""

    def key(t: float) -> tuple[float, float]:
        score = _pooled([table[t][i] for i in images]).score
        return (-1.0 if np.isnan(score) else score, -abs(t - default))

    return max(table, key=key)


def cross_fit(predictor: Predictor, val: list[Sample], tuned: Tuned) -> tuple[float, SegResult]:
    """The value of ``tuned.setting`` chosen on all ``val`` images, and the cross-fitted SEG.

    Each image is predicted once; every candidate's cells are scored per image, so
    the halves and the whole reuse the same table.
    """
    cfg = predictor.cfg
    probs = [predictor.predict(s.image, s.path or s.name) for s in val]
    refs = [reference_instances(s.mask, cfg.data.mask_threshold) for s in val]
    table = {
        value: [
            seg_measure(
                ref,
                label_cells(p, cfg, predictor.threshold, InstanceOptions(**{tuned.setting: value})),
            )
            for p, ref in zip(probs, refs, strict=True)
        ]
        for value in tuned.candidates
    }
    half = len(val) // 2
    first, second = range(half), range(half, len(val))
    crossed = [table[_best(table, first, tuned.default)][i] for i in second]
    crossed += [table[_best(table, second, tuned.default)][i] for i in first]
    return _best(table, range(len(val)), tuned.default), _pooled(crossed)


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
    if tuned is None or len(annotated) < 2:
        return cfg, metrics
    chosen, crossed = cross_fit(predictor, annotated, tuned)
    cfg = replace(cfg, postprocess=replace(cfg.postprocess, **{tuned.setting: chosen}))
    cfg.save(config_file)
    summary = {
        "parameter": tuned.setting,
        tuned.setting: chosen,
        "candidates": list(tuned.candidates),
        "seg_crossfit": None if np.isnan(crossed.score) else crossed.score,
        "objects": {"reference": crossed.reference, "matched": crossed.matched},
    }
    return cfg, {**metrics, "postprocess": summary}
