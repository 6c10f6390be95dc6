"""Issue 11's measurement: does a separating training target stop touching HeLa cells merging?

CTC DIC-C2DH-HeLa sequence 01 (silver truth), frames in time order, cut into blocks
with gaps so no neighbouring near-copy frame crosses a boundary:

- train:    t000-t039 (40 frames)
- validate: t043-t049 (7 frames: model selection, and ``fit``'s cross-fitted choice of
  the boundary target's interior threshold or the distance target's seed height)
- test:     t053-t059 (7 frames: reported; neither trained nor tuned on)

Each target trains at the same small budget (``--size 256 --base-filters 16 --epochs 10
--steps-per-epoch 20``), and is scored on the test block at full resolution with
``unet-tf evaluate --instances``: pixel Dice of the foreground, CTC SEG, and objects
predicted versus reference cells. The binary target is also scored with
``--split-touching`` (distance-transform watershed), the post-processing fix without a
new target. The commands are printed as they run; the table is printed as Markdown.

    .venv/bin/python experiments/targets.py --out runs/targets   # 5-15 minutes on 2 cores

It also draws ``docs/targets_hela.png``: one test frame (t056, the middle of the test
block, not picked for its result) with the silver truth and each model's cells as
coloured instance overlays, titled with the frame's cell count and SEG.

Finished runs are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from skimage.color import label2rgb

from unet_tf.atomic import atomic_path
from unet_tf.config import DataConfig
from unet_tf.data.formats.ctc import read_ctc
from unet_tf.evaluation.objects import reference_instances, seg_measure
from unet_tf.evaluation.tuning import TUNED, retune
from unet_tf.inference.postprocess import InstanceOptions, label_cells
from unet_tf.inference.predictor import load_predictor
from unet_tf.viz import contrast_stretch

ROOT = Path(__file__).resolve().parents[1]
HELA = ROOT.parent / "shared" / "data" / "ctc" / "DIC-C2DH-HeLa"
BLOCKS = {"train": range(0, 40), "val": range(43, 50), "test": range(53, 60)}
BUDGET = ["--size", "256", "--base-filters", "16", "--epochs", "10", "--steps-per-epoch", "20"]
SCORED = {  # name: (training target, evaluate's extra options)
    "binary": ("binary", []),
    "binary + split-touching": ("binary", ["--split-touching"]),
    "boundary": ("boundary", []),
    "distance": ("distance", []),
}


def block(out: Path, name: str, frames: range) -> Path:
    """A CTC-layout folder of symlinks to the given frames of sequence 01 and their masks."""
    root = out / "data" / name
    for sub in ("01", "01_ST/SEG"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for t in frames:
        for source, link in [
            (HELA / "01" / f"t{t:03d}.tif", root / "01" / f"t{t:03d}.tif"),
            (
                HELA / "01_ST" / "SEG" / f"man_seg{t:03d}.tif",
                root / "01_ST/SEG" / f"man_seg{t:03d}.tif",
            ),
        ]:
            if not link.exists():
                link.symlink_to(source)
    return root


def run(args: list[str]) -> None:
    command = [sys.executable, "-m", "unet_tf.cli", *args]
    print("$", shlex.join(["unet-tf", *args]), flush=True)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    subprocess.run(command, check=True, cwd=ROOT, env=env)


def crossfit(tuned: dict) -> str:
    value = tuned.get("seg_crossfit")
    return "-" if value is None else f"{value:.3f}"


FIGURE_FRAME = "t056"
PANELS = {  # title: (run, instance options), drawn after the silver truth
    "binary mask, connected components (before)": ("binary", InstanceOptions()),
    "binary + --split-touching": ("binary", InstanceOptions(split_touching=True)),
    "distance target, the default (after)": ("distance", InstanceOptions()),
}


def figure(out: Path, test: Path, path: Path, budget: str) -> None:
    """Before/after panels of touching HeLa cells on one test frame, as instance overlays."""
    sample = next(
        s for s in read_ctc(test, DataConfig(annotations="st")) if s.name.endswith(FIGURE_FRAME)
    )
    reference = reference_instances(sample.mask)
    image = contrast_stretch(sample.image[..., 0])
    panels = [(f"silver truth: {len(np.unique(reference)) - 1} cells", reference)]
    for title, (target, options) in PANELS.items():
        predictor = load_predictor(out / f"run-{target}")
        probs = predictor.predict(sample.image)
        labels = label_cells(probs, predictor.cfg, predictor.threshold, options)
        seg = seg_measure(reference, labels).score
        panels.append((f"{title}: {labels.max()} objects, SEG {seg:.2f}", labels))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6))
    for ax, (title, labels) in zip(axes, panels, strict=True):
        overlay = label2rgb(labels, image=image, alpha=0.45, bg_label=0, image_alpha=1)
        ax.imshow(np.clip(overlay, 0, 1))
        ax.set_title(title, fontsize=9, wrap=True)
        ax.axis("off")
    fig.suptitle(
        f"CTC DIC-C2DH-HeLa 01 {FIGURE_FRAME}, a test frame; each model trained for {budget}",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    print(f"figure written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "targets")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "targets_hela.png")
    parser.add_argument(
        "--budget",
        help="train each target with the default recipe (the plan) for this long, e.g. 10m, "
        "instead of the fixed 200-step recipe",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SCORED), help="score only these rows"
    )
    parser.add_argument(
        "--retune",
        action="store_true",
        help="choose the finished runs' post-processing again on the validation block "
        "(after a post-processing change; nothing is retrained) and score the test again",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    recipe = ["--budget", args.budget] if args.budget else BUDGET
    data = {name: block(out, name, frames) for name, frames in BLOCKS.items()}
    retuned = set()  # targets whose test scores are stale: evaluate replaces them
    if args.retune:
        val = read_ctc(data["val"], DataConfig(annotations="st"))
        for target in {target for target, _ in SCORED.values()} & set(TUNED):
            if (out / f"run-{target}" / "metrics.json").exists():
                retune(out / f"run-{target}", val)
                retuned.add(target)
    rows = []
    for name, (target, extra) in SCORED.items():
        if args.only and name not in args.only:
            continue
        run_dir = out / f"run-{target}"
        if not (run_dir / "metrics.json").exists():
            run([
                "fit", "--data", str(data["train"]), "--val", str(data["val"]),
                "--target", target, *recipe, "--seed", "0", "--quiet", "--run-dir", str(run_dir),
            ])  # fmt: skip
        scores = out / f"test-{name.replace(' ', '')}.json"
        if target in retuned or not scores.exists():
            run([
                "evaluate", str(run_dir), "--data", str(data["test"]), "--instances", *extra,
                "--json", str(scores), *(["--overwrite"] if target in retuned else []),
            ])  # fmt: skip
        result = json.loads(scores.read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        tuned = metrics.get("postprocess") or {}
        rows.append(
            f"| {name} | {result['dataset']['dice']:.3f} | {result['mean']['seg']:.3f} | "
            f"{result['dataset']['seg']:.3f} | {result['objects']['predicted']} / "
            f"{result['objects']['reference']} | {metrics['train_seconds']:.0f} | "
            f"{tuned.get('parameter', '-')} {tuned.get(tuned.get('parameter'), '')} | "
            f"{crossfit(tuned)} |"
        )
    print(
        "| target | test Dice (pooled) | test SEG (mean of frames) | test SEG (pooled cells) "
        "| objects / cells | train s | tuned setting | val SEG (cross-fitted) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    figure(out, data["test"], args.figure, args.budget or "200 steps of the 16-filter recipe")


if __name__ == "__main__":
    main()
