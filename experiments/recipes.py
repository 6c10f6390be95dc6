"""Issue 13's measurement: today's fixed defaults vs the plan vs the plan with a fold ensemble.

Each dataset in ``../shared/data`` is cut once into a training part and a test part
(a block of frames or slices kept apart by a gap; for DRIVE four fixed images). Every
recipe trains on the training part with the same wall-clock ``--budget`` on this machine
and is scored on the test part, which no recipe trains, validates or tunes on:

- ``defaults``: ``unet-tf fit --no-plan`` (resize to 256 px, 32 filters, batch 4,
  threshold 0.5; ``--target auto`` as always);
- ``plan``: ``unet-tf fit`` (the plan: input, depth, width, batch, sampling, loss,
  augmentation, threshold chosen on the validation images);
- ``plan + folds``: ``unet-tf fit --folds 3 --all-folds``; the budget covers all three
  folds, and ``evaluate`` averages their probabilities at the out-of-fold threshold.

Scores: ``unet-tf evaluate RUN --data TEST`` (DRIVE inside the field of view; CTC SEG on
the cells with ``--instances``). Dice is pooled over the test images (F1 for DRIVE), AUC
where the evaluation computes it. With ``--seeds N`` each cell is mean ± sd of N seeds.
Each run is a folder under ``--out``; finished runs are skipped, an interrupted one
resumes, so rerunning the command continues the grid. Every scored run is also a row of
``docs/recipes.csv`` (beside ``--doc``), which git keeps: run folders are not committed, so
the ledger is what lets a later session add seeds (``--first-seed``) to an earlier grid.

    nice -n 19 flock /tmp/unet-heavy.lock .venv/bin/python experiments/recipes.py \\
        --budget 5m --dataset drive --dataset hela
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from table1 import atomic_write_text, machine  # experiments/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Dataset:
    label: str
    source: Path
    train: range  # the first number in each file's name (frame, slice or image number)
    test: range
    instances: bool  # cells labelled one by one: score SEG too
    reach: float = 0.9  # the validation Dice whose time to reach is reported


DATASETS = {
    "drive": Dataset(
        "DRIVE (FOV)", SHARED / "drive" / "training", range(21, 37), range(37, 41), False, 0.8
    ),
    "hela": Dataset(
        "CTC DIC-HeLa 01 (silver)",
        SHARED / "ctc" / "DIC-C2DH-HeLa",
        range(0, 47),
        range(50, 60),
        True,
    ),
    "u373": Dataset(
        "CTC PhC-U373 01 (gold, else silver)",
        SHARED / "ctc" / "PhC-C2DH-U373",
        range(0, 92),
        range(95, 115),
        True,
    ),
    "isbi": Dataset("ISBI 2012 EM", SHARED / "isbi2012-em", range(0, 14), range(16, 20), False),
}
RECIPES = {
    "defaults": ["--no-plan"],
    "plan": [],
    "plan + folds": ["--folds", "3", "--all-folds"],
}
NUMBER = re.compile(r"(\d+)")
LEDGER_FIELDS = (
    "machine", "budget", "dataset", "recipe", "seed", "dice", "auc", "seg", "reach", "date"
)  # fmt: skip


def subset(source: Path, target: Path, numbers: range) -> Path:
    """``source``'s folder tree with symlinks to the files whose first number is in ``numbers``."""
    for path in sorted(source.rglob("*")):
        match = NUMBER.search(path.name)
        if not path.is_file() or match is None or int(match.group(1)) not in numbers:
            continue
        link = target / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(path)
    return target


def unet_tf(*args: str) -> None:
    print("$ unet-tf", shlex.join(args), flush=True)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    subprocess.run([sys.executable, "-m", "unet_tf.cli", *args], check=True, cwd=ROOT, env=env)


def run_one(
    out: Path, ledger: Path, name: str, data: Dataset, recipe: str, budget: str, seed: int
) -> None:
    """Train one recipe (unless finished), score it on the test part and record the scores.

    The scores are a JSON beside the run and a row of ``ledger``.
    """
    parts = out / "data" / name
    train = subset(data.source, parts / "train", data.train)
    test = subset(data.source, parts / "test", data.test)
    slug = recipe.replace(" + ", "-")
    run_dir = out / f"{name}-{slug}-s{seed}"
    finished = run_dir / ("ensemble.json" if "--all-folds" in RECIPES[recipe] else "metrics.json")
    if not finished.exists():
        unet_tf(
            "fit", "--data", str(train), "--budget", budget, "--seed", str(seed), "--quiet",
            *RECIPES[recipe], "--run-dir", str(run_dir),
        )  # fmt: skip
    scores = out / f"{name}-{slug}-s{seed}.json"
    if not scores.exists():
        extra = ["--instances"] if data.instances else []
        unet_tf("evaluate", str(run_dir), "--data", str(test), *extra, "--json", str(scores))
    result = json.loads(scores.read_text())["dataset"]
    single = "--all-folds" not in RECIPES[recipe]  # an ensemble has no one history
    record(
        ledger,
        {
            "machine": machine(),
            "budget": budget,
            "dataset": name,
            "recipe": recipe,
            "seed": str(seed),
            "dice": f"{result['dice']:.4f}",
            "auc": f"{result['auc']:.4f}" if result.get("auc") is not None else "",
            "seg": f"{result['seg']:.4f}" if data.instances else "",
            "reach": time_to(run_dir, data.reach) if single else "",
            "date": datetime.date.today().isoformat(),
        },
    )


def read_ledger(ledger: Path) -> list[dict[str, str]]:
    """The ledger's rows (none when it does not exist yet)."""
    if not ledger.exists():
        return []
    with ledger.open(newline="") as f:
        return list(csv.DictReader(f))


def record(ledger: Path, row: dict[str, str]) -> None:
    """Add ``row`` to the ledger, replacing the row of the same run (machine, budget, ...).

    Written atomically, so a killed grid never leaves half a ledger.
    """
    key = ("machine", "budget", "dataset", "recipe", "seed")
    rows = [r for r in read_ledger(ledger) if any(r[k] != row[k] for k in key)] + [row]
    rows.sort(key=lambda r: (r["machine"], r["budget"], r["dataset"], r["recipe"], int(r["seed"])))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LEDGER_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(ledger, text.getvalue())


def time_to(run_dir: Path, dice: float) -> str:
    """CPU-minutes of training until the epoch's validation Dice first reached ``dice``.

    The Dice is Keras' per-epoch validation metric at threshold 0.5 (``val_dice`` in
    ``history.csv``), not the test score. The CPU time is the history's cumulative
    ``cpu_seconds`` (process CPU time, all cores), measured rather than inferred from the
    wall clock; the wall-clock ``seconds`` follow in brackets.
    """
    history = run_dir / "history.csv"
    if not history.exists():
        return "not run"
    rows = list(csv.DictReader(history.open()))
    if not rows or "seconds" not in rows[0]:
        return "no timing"

    def spent(row: dict[str, str]) -> str:
        wall = f"{float(row['seconds']):.0f} s"
        if not row.get("cpu_seconds"):
            return wall
        return f"{float(row['cpu_seconds']) / 60:.1f} CPU-min ({wall})"

    for row in rows:
        if row.get("val_dice") and float(row["val_dice"]) >= dice:
            return f"{spent(row)}, epoch {row['epoch']}"
    return f"not reached ({float(rows[-1]['val_dice']):.3f} after {spent(rows[-1])})"


def cell(rows: list[dict[str, str]]) -> str:
    """One table cell: test Dice, AUC and SEG (where measured) as mean ± sd over the rows."""
    if not rows:
        return "not run"

    def stat(column: str) -> str:
        values = [float(r[column]) for r in rows]
        if len(values) == 1:
            return f"{values[0]:.3f}"
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    parts = [f"**{stat('dice')}** ({len(rows)})"]
    if all(r["auc"] for r in rows):
        parts.append(f"AUC {stat('auc')}")
    if all(r["seg"] for r in rows):
        parts.append(f"SEG {stat('seg')}")
    return parts[0] + "<br>" + " · ".join(parts[1:]) if len(parts) > 1 else parts[0]


def reach_cell(rows: list[dict[str, str]]) -> str:
    """Each seed's time to accuracy, seed by seed."""
    if not rows:
        return "not run"
    return "<br>".join(f"seed {r['seed']}: {r['reach']}" for r in rows)


def render(rows: list[dict[str, str]], budget: str, ledger_name: str) -> str:
    """The doc: a results table and a time-to-accuracy table for each machine in ``rows``.

    Machines are kept apart because the budget is wall-clock time: a slower CPU trains
    fewer steps in it, so its runs are another condition, not more seeds of the same one.
    """
    sections = []
    for host in sorted({r["machine"] for r in rows}):
        mine = [r for r in rows if r["machine"] == host]
        table = {
            (name, recipe): [r for r in mine if r["dataset"] == name and r["recipe"] == recipe]
            for name in DATASETS
            for recipe in RECIPES
        }
        seeds = sorted({int(r["seed"]) for r in mine})
        dates = sorted({r["date"] for r in mine})
        lines = [
            f"## {host}",
            "",
            f"Seeds {', '.join(map(str, seeds))}; measured on {', '.join(dates)}.",
            "",
            "| recipe | " + " | ".join(d.label for d in DATASETS.values()) + " |",
            "|---|" + "---|" * len(DATASETS),
        ]
        for recipe in RECIPES:
            cells = [cell(table[(n, recipe)]) for n in DATASETS]
            lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Time to accuracy:",
            "",
            "| recipe | "
            + " | ".join(f"{d.label}: Dice {d.reach:.2f}" for d in DATASETS.values())
            + " |",
            "|---|" + "---|" * len(DATASETS),
        ]
        for recipe in ("defaults", "plan"):
            cells = [reach_cell(table[(n, recipe)]) for n in DATASETS]
            lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
        sections += [*lines, ""]
    return "\n".join(
        [
            "# Defaults vs the plan vs the plan with a fold ensemble, at the same budget",
            "",
            f"Generated by `experiments/recipes.py --budget {budget}` from `{ledger_name}`, "
            "which keeps every scored run.",
            "Each recipe trained for the same wall-clock budget "
            f"({budget}, the whole ensemble for `plan + folds`) on the training part "
            "and was scored on a test part no recipe saw (see the script's docstring for "
            "the parts). Cells: test Dice pooled over the test images (F1 for DRIVE, inside "
            "its field of view), mean ± sd over seeds (count); AUC where computed; CTC SEG "
            'pooled over the labelled cells. "not run": no finished run, never an estimate.',
            "",
            "Time to accuracy: CPU-minutes of training (process CPU time on all cores, "
            "validation included; wall-clock seconds in brackets) until the per-epoch "
            "validation Dice (Keras' metric at threshold 0.5 on the run's validation images, "
            "`val_dice` in `history.csv`) first reached the column's value.",
            "",
            "Test parts: DRIVE images 37-40 (train 21-36); CTC HeLa frames t050-t059 (train "
            "t000-t046); U373 frames t095-t114 (train t000-t091); ISBI slices 16-19 (train "
            "0-13).",
            "",
            *sections,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "recipes")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "recipes.md")
    parser.add_argument("--budget", default="5m", help="wall-clock training budget per recipe")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds to train")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="the first of them (to add seeds to a grid)"
    )
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS))
    parser.add_argument("--recipe", action="append", choices=list(RECIPES))
    args = parser.parse_args()
    out = args.out.resolve() / args.budget
    ledger = args.doc.with_suffix(".csv")
    chosen = args.dataset or list(DATASETS)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for name in chosen:
        for recipe in args.recipe or list(RECIPES):
            for seed in seeds:
                run_one(out, ledger, name, DATASETS[name], recipe, args.budget, seed)
    # every run in the ledger at this budget, so the doc keeps what earlier commands measured
    rows = [r for r in read_ledger(ledger) if r["budget"] == args.budget]
    doc = render(rows, args.budget, ledger.name)
    atomic_write_text(args.doc, doc)  # a killed run never leaves half a doc
    print(doc)


if __name__ == "__main__":
    main()
