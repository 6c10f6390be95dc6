"""Issue 3's comparison: scratch vs ImageNet VGG16 / ResNet50, frozen vs fine-tuned, BCE vs focal.

Every run is one ``unet-tf fit`` command with the same budget per dataset (epochs,
steps, batch, input size, augmentation); only the encoder and the loss change. The
commands are printed as they run, and the table (validation Dice and IoU at full
resolution, wall and CPU seconds of training, all read from each run's
``metrics.json``) is written as Markdown.

    .venv/bin/python experiments/compare_backbones.py                  # the whole grid
    .venv/bin/python experiments/compare_backbones.py --only drive --only vgg16
    .venv/bin/python experiments/compare_backbones.py --phased --only phased  # --freeze-epochs 3

Finished runs are skipped, so an interrupted grid continues where it stopped.
Heavy: run it under ``flock /tmp/unet-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WEIGHTS = {
    "vgg16": SHARED / "weights" / "vgg16_imagenet_notop.h5",
    "resnet50": SHARED / "weights" / "resnet50_imagenet_notop.h5",
}
# DRIVE: 20 training images, 15 train / 5 validation (seeded split), scored inside the
# field-of-view; 128 px patches at full resolution, because vessels are 1-8 px wide
# and would vanish in a 128 px resize. HeLa DIC: 39 frames resized to 128 px (the
# papers' protocol), masks {0, 1, 2} with foreground >= 1 (the default threshold 0).
DATASETS = {
    "drive": [
        "--data", str(SHARED / "data" / "drive" / "training"), "--format", "drive",
        "--val-split", "0.25", "--patch", "128", "--fg-prob", "0.33",
    ],
    "hela": ["--data", str(SHARED / "data" / "hela-dic"), "--val-split", "0.2", "--size", "128"],
}  # fmt: skip
MODELS = {
    "scratch": ["--backbone", "none"],
    "vgg16-frozen": ["--backbone", "vgg16", "--freeze"],
    "vgg16-finetuned": ["--backbone", "vgg16", "--no-freeze"],
    "resnet50-frozen": ["--backbone", "resnet50", "--freeze"],
    "resnet50-finetuned": ["--backbone", "resnet50", "--no-freeze"],
    # beyond the papers: frozen for 3 epochs, then everything at LR / 10
    "resnet50-phased": ["--backbone", "resnet50", "--freeze-epochs", "3"],
    "vgg16-phased": ["--backbone", "vgg16", "--freeze-epochs", "3"],
}
PAPERS = [m for m in MODELS if not m.endswith("phased")]  # the default grid
LOSSES = {"bce": ["--loss", "bce"], "focal": ["--loss", "focal", "--focal-alpha", "0.8"]}
NAMES = {*DATASETS, *MODELS, *LOSSES, *(part for m in MODELS for part in m.split("-"))}


def budget(epochs: int, steps: int) -> list[str]:
    """The same for every run: Adam 1e-3 with the step schedule, batch 4, flips + rotations."""
    return ["--epochs", str(epochs), "--steps-per-epoch", str(steps), "--batch-size", "4"]


def command(dataset: str, model: str, loss: str, args: argparse.Namespace) -> list[str]:
    cmd = [str(ROOT / ".venv" / "bin" / "unet-tf"), "fit", *DATASETS[dataset], *MODELS[model]]
    backbone = MODELS[model][1]
    if backbone in WEIGHTS:
        cmd += ["--encoder-weights", str(WEIGHTS[backbone])]
    run_dir = args.runs / f"{dataset}-{model}-{loss}"
    return [*cmd, *LOSSES[loss], *budget(args.epochs, args.steps), "--run-dir", str(run_dir)]


def row(dataset: str, model: str, loss: str, run_dir: Path) -> str:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    mean = metrics["validation"]["mean"]
    return (
        f"| {dataset} | {model} | {loss} | {mean['dice']:.4f} | {mean['iou']:.4f} | "
        f"{metrics['train_seconds']:.0f} | {metrics['train_cpu_seconds']:.0f} | "
        f"{metrics['best_epoch']} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "compare_backbones")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="keep only runs with this name part, e.g. drive, vgg16, frozen, focal (repeatable)",
    )
    parser.add_argument("--table", type=Path, help="also write the Markdown table here")
    parser.add_argument(
        "--phased", action="store_true", help="add the --freeze-epochs 3 runs to the grid"
    )
    args = parser.parse_args()
    unknown = [o for o in args.only if o not in NAMES]
    if unknown:
        parser.error(f"unknown --only {unknown}; choose from {sorted(NAMES)}")
    lines = [
        "| data | encoder | loss | val Dice | val IoU | wall s | CPU s | best epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loss in LOSSES:  # BCE on both datasets first: a cut-short grid is still a table
        for dataset in DATASETS:
            for model in MODELS if args.phased else PAPERS:
                names = {dataset, model, loss, *model.split("-")}
                if not all(o in names for o in args.only):
                    continue
                cmd = command(dataset, model, loss, args)
                run_dir = Path(cmd[-1])
                if not (run_dir / "metrics.json").exists():
                    print("$", shlex.join(cmd), flush=True)
                    subprocess.run([*cmd, "--quiet"], check=False)
                if not (run_dir / "metrics.json").exists():
                    sys.exit(f"{run_dir} did not finish; see the output above")
                lines.append(row(dataset, model, loss, run_dir))
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.table:
        args.table.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
