"""Issue 11 experiment: does splitting each object at the necks of its own mask cut DSB merges?

The distance target's watershed merges touching DSB 2018 nuclei when the predicted
distance map has a single maximum over both. This predicts a finished run's validation
images once, then for every (foreground threshold, seed height) of ``fit``'s grid and a
neck depth d (none = today's watershed) splits each object again with the binary
target's ``split_touching`` (h-maxima of its own distance transform, d px deep), and
prints, per d, the choice with the best pooled PQ, cross-fitted as ``fit`` does (each
half scored at the choice made on the other), with its split and merged nuclei.

    .venv/bin/python experiments/dsb_resplit.py runs/exp/dsb-s0/unet runs/exp/dsb-s0/split/val
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import ndimage

from unet_tf.data.formats.dsb import read_dsb
from unet_tf.evaluation.objects import ObjectScores, object_scores, reference_instances
from unet_tf.evaluation.tuning import FOREGROUND_THRESHOLDS, TUNED
from unet_tf.inference.postprocess import (
    InstanceOptions,
    label_cells,
    remove_small,
    split_touching,
)
from unet_tf.inference.predictor import load_predictor

DEPTHS = (None, 1.0, 2.0, 3.0, 4.0)  # px; None: no second split


def split_at_necks(labels: np.ndarray, depth: float | None) -> np.ndarray:
    """Each object of ``labels`` split where its own mask has a neck ``depth`` px deep."""
    if depth is None:
        return labels
    out, count = np.zeros_like(labels), 0
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        obj = labels[box] == index
        parts = split_touching(obj, depth)
        out[box][obj] = parts[obj] + count
        count += int(parts.max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("val", type=Path, help="the run's DSB validation folder")
    args = parser.parse_args()
    predictor = load_predictor(args.run)
    cfg = predictor.cfg
    samples = read_dsb(args.val)
    probs = [predictor.predict(s.image, s.name) for s in samples]
    refs = [reference_instances(s.mask, cfg.data.mask_threshold) for s in samples]
    grid = [(t, v) for t in FOREGROUND_THRESHOLDS for v in TUNED["distance"].candidates]
    choices = [(t, v, d) for t, v in grid for d in DEPTHS]

    def row(prob: np.ndarray, ref: np.ndarray) -> list[ObjectScores]:
        scores = []
        for t, v in grid:
            cells = label_cells(prob, cfg, t, InstanceOptions(seed_height=v))
            for d in DEPTHS:
                split = remove_small(split_at_necks(cells, d), cfg.postprocess.min_size)
                scores.append(object_scores(ref, split))
        return scores

    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(row, probs, refs))
    table = {choice: [r[k] for r in rows] for k, choice in enumerate(choices)}

    def best(candidates: list, images: range) -> tuple:
        return max(
            candidates,
            key=lambda c: sum((table[c][i] for i in images), ObjectScores()).scores()["pq"],
        )

    half = len(probs) // 2
    first, second = range(half), range(half, len(probs))
    print("| neck depth d | chosen (threshold, seed height) | cross-fitted PQ | AP@0.5 | SEG "
          "| split / merged | predicted / reference |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for d in DEPTHS:
        candidates = [c for c in choices if c[2] == d]
        crossed = [table[best(candidates, first)][i] for i in second]
        crossed += [table[best(candidates, second)][i] for i in first]
        total = sum(crossed, ObjectScores())  # ObjectScores add up: pooled counts
        s, n = total.scores(), total.counts()
        chosen = best(candidates, range(len(probs)))[:2]
        print(
            f"| {d or 'none'} | {chosen} | {s['pq']:.3f} | {s['ap50']:.3f} | {s['seg']:.3f} | "
            f"{s['splits']} / {s['merges']} | {n['predicted']} / {n['reference']} |"
        )


if __name__ == "__main__":
    main()
