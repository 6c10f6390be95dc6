"""Issue 11's peer comparison: unet-tf vs StarDist 2D on DSB 2018, same images, same budget.

The 200 DSB 2018 images in ``../shared/data/dsb2018/stage1_train`` are split once
(seeded; DSB images are independent, so a random split is honest) into

- ``train/`` (130 images): what both tools learn from;
- ``val/`` (30 images): what each tool tunes its post-processing on (unet-tf's
  cross-fitted interior threshold, StarDist's ``optimize_thresholds``);
- ``test/`` (40 images): reported; neither trained nor tuned on.

unet-tf trains with ``unet-tf fit`` (its defaults for instance masks plus the options
given with ``--unet``), StarDist with ``stardist_side.py`` in its own environment
(``experiments/requirements-stardist.txt``), each for the same wall-clock training
budget on this machine. Both tools' test labels are scored by the same unet-tf code:
AP at IoU 0.5 (TP / (TP + FP + FN), the DSB definition), the DSB score (mean AP over
IoU 0.5-0.95), F1 at 0.5, panoptic quality, CTC SEG, pixel Dice of the foreground,
and split and merged nuclei.

    .venv/bin/python experiments/stardist_dsb.py --budget 600 \
        --stardist-python /work/venv-stardist/bin/python

Finished steps are skipped, so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from unet_tf.data.formats.dsb import read_dsb
from unet_tf.evaluation.objects import ObjectScores, object_scores

ROOT = Path(__file__).resolve().parents[1]
DSB = ROOT.parent / "shared" / "data" / "dsb2018" / "stage1_train"
SIZES = {"test": 40, "val": 30}  # the rest trains


def lay_out_split(out: Path, seed: int) -> Path:
    """Symlinked DSB folders ``train/``, ``val/`` and ``test/`` under ``out/split``."""
    ids = sorted(p.name for p in DSB.iterdir() if p.is_dir() and not p.name.startswith("."))
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = {"test": order[: SIZES["test"]], "val": order[SIZES["test"] : sum(SIZES.values())]}
    parts["train"] = order[sum(SIZES.values()) :]
    split = out / "split"
    for part, indices in parts.items():
        (split / part).mkdir(parents=True, exist_ok=True)
        for i in indices:
            link = split / part / ids[i]
            if not link.exists():
                link.symlink_to(DSB / ids[i])
    return split


def run(command: list[str]) -> None:
    print("$", shlex.join(command), flush=True)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    subprocess.run(command, check=True, cwd=ROOT, env=env)


def score(split: Path, labels_of: dict[str, Path]) -> dict[str, float]:
    """Pooled object scores and pixel Dice of predicted label TIFFs on ``split/test``."""
    total, inter, sizes = ObjectScores(), 0, 0
    for sample in read_dsb(split / "test"):
        truth = sample.mask.astype(np.int64)
        predicted = tifffile.imread(labels_of[sample.name]).astype(np.int64)
        total = total + object_scores(truth, predicted)
        inter += int(np.sum((truth > 0) & (predicted > 0)))
        sizes += int(np.sum(truth > 0) + np.sum(predicted > 0))
    return {**total.scores(), **total.counts(), "dice": 2 * inter / sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "stardist-dsb")
    parser.add_argument("--budget", type=float, default=600, help="training seconds per tool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unet", default="", help="extra `unet-tf fit` options, quoted")
    parser.add_argument("--stardist-python", default="/work/venv-stardist/bin/python")
    parser.add_argument(
        "--retune",
        action="store_true",
        help="choose the finished unet-tf run's post-processing again on the validation "
        "images (after a post-processing change; the network is not retrained) and "
        "predict the test images again",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    split = lay_out_split(out, args.seed)
    if args.retune:
        from unet_tf.evaluation.tuning import retune

        retune(out / "unet", read_dsb(split / "val"))

    unet_run = out / "unet"
    if not (unet_run / "metrics.json").exists():
        run([
            sys.executable, "-m", "unet_tf.cli", "fit", "--data", str(split / "train"),
            "--val", str(split / "val"), "--format", "dsb", "--budget", f"{args.budget:.0f}s",
            "--seed", str(args.seed), "--quiet", *shlex.split(args.unet), "--run-dir",
            str(unet_run),
        ])  # fmt: skip
    unet_pred = out / "unet-test"
    if args.retune or not unet_pred.exists():
        run([
            sys.executable, "-m", "unet_tf.cli", "predict", str(unet_run), str(split / "test"),
            "--instances", "--quiet", "--out", str(unet_pred),
            *(["--overwrite"] if args.retune else []),  # predict replaces its own files
        ])  # fmt: skip
    stardist_run = out / "stardist"
    if not (stardist_run / "stardist.json").exists():
        run([
            args.stardist_python, str(ROOT / "experiments" / "stardist_side.py"), str(split),
            str(stardist_run), "--budget", str(args.budget), "--seed", str(args.seed),
        ])  # fmt: skip

    names = sorted(p.name for p in (split / "test").iterdir())
    metrics = json.loads((unet_run / "metrics.json").read_text())
    stardist = json.loads((stardist_run / "stardist.json").read_text())
    rows = {
        "unet-tf": (
            score(split, {n: unet_pred / f"{n}_labels.tif" for n in names}),
            metrics["train_seconds"],
        ),
        "StarDist 2D": (
            score(split, {n: stardist_run / "labels" / f"{n}.tif" for n in names}),
            stardist["train_seconds"],
        ),
    }
    print(
        "| tool | AP@0.5 | DSB mean AP | F1@0.5 | PQ | SEG | pixel Dice | split / merged "
        "| nuclei predicted / reference | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tool, (s, seconds) in rows.items():
        print(
            f"| {tool} | {s['ap50']:.3f} | {s['map']:.3f} | {s['f1_50']:.3f} | {s['pq']:.3f} | "
            f"{s['seg']:.3f} | {s['dice']:.3f} | {s['splits']} / {s['merges']} | "
            f"{s['predicted']} / {s['reference']} | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
