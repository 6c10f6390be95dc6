"""Choosing the post-processing on the validation images, with an honest score for it.

The boundary target's watershed has one setting that decides how many cells come out:
the interior probability above which a pixel seeds a cell (``interior_threshold``).
Choosing it by SEG on the validation images and reporting that SEG would score the
same images twice, and flatter the choice. So the score is cross-fitted: the
validation images are cut into two contiguous halves (time-lapse frames stay in
blocks, as the split keeps them), the threshold chosen on one half is scored on the
other, and the reverse; the pooled SEG of both scored halves goes in metrics.json.
The threshold the run keeps is then chosen on all validation images (more data, the
same procedure) and recorded in config.yaml's ``postprocess`` section.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.objects import SegResult, reference_instances, seg_measure
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import Predictor

INTERIOR_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_INTERIOR = 0.5  # wins ties, so a flat score keeps the default


def _pooled(results: list[SegResult]) -> SegResult:
    total = SegResult()
    for result in results:
        total = total + result
    return total


def _best(table: dict[float, list[SegResult]], images: range) -> float:
    """The candidate with the highest pooled SEG on ``images``; ties go to the default."""

    def key(t: float) -> tuple[float, float]:
        score = _pooled([table[t][i] for i in images]).score
        return (-1.0 if np.isnan(score) else score, -abs(t - DEFAULT_INTERIOR))

    return max(table, key=key)


def cross_fit_interior(
    predictor: Predictor, val: list[Sample], candidates: tuple[float, ...] = INTERIOR_THRESHOLDS
) -> tuple[float, SegResult]:
    """The interior threshold chosen on all ``val`` images, and the cross-fitted SEG.

    Each image is predicted once; every candidate's cells are scored per image, so
    the halves and the whole reuse the same table.
    """
    cfg = predictor.cfg
    probs = [predictor.predict(s.image, s.path or s.name) for s in val]
    refs = [reference_instances(s.mask, cfg.data.mask_threshold) for s in val]
    table = {
        t: [
            seg_measure(
                ref, label_cells(p, cfg, predictor.threshold, InstanceOptions(interior_threshold=t))
            )
            for p, ref in zip(probs, refs, strict=True)
        ]
        for t in candidates
    }
    half = len(val) // 2
    first, second = range(half), range(half, len(val))
    crossed = [table[_best(table, first)][i] for i in second]
    crossed += [table[_best(table, second)][i] for i in first]
    return _best(table, range(len(val))), _pooled(crossed)


def tune_postprocess(
    predictor: Predictor, val: list[Sample], metrics: dict, config_file: Path
) -> tuple[RunConfig, dict]:
    """After ``fit``: the run's config with the chosen post-processing, and its metrics.

    Only the boundary target has a setting to choose, and cross-fitting needs at
    least two annotated validation images; otherwise both come back unchanged. The
    chosen config is saved to ``config_file``; ``metrics`` gains a ``postprocess`` entry.
    """
    cfg = predictor.cfg
    annotated = [s for s in val if s.mask is not None]
    if cfg.data.target != "boundary" or len(annotated) < 2:
        return cfg, metrics
    chosen, crossed = cross_fit_interior(predictor, annotated)
    cfg = replace(cfg, postprocess=replace(cfg.postprocess, interior_threshold=chosen))
    cfg.save(config_file)
    summary = {
        "interior_threshold": chosen,
        "candidates": list(INTERIOR_THRESHOLDS),
        "seg_crossfit": None if np.isnan(crossed.score) else crossed.score,
        "objects": {"reference": crossed.reference, "matched": crossed.matched},
    }
    return cfg, {**metrics, "postprocess": summary}
