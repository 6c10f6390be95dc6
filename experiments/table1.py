"""Issue 12: reproduce both transfer-learning studies' Table 1 with one resumable grid.

Study 1 (scratch vs transfer): a from-scratch U-Net against VGG16 and ResNet50 encoders
(ImageNet, frozen or fine-tuned), trained with dice-focal (gamma 0.9) and with
``alpha * focal - log(Dice)``, on CTC HeLa (DIC), CTC U373 (phase contrast) and DRIVE.
Study 2: a scratch U-Net with BCE and with focal (alpha 0.8) against ResNet50, VGG16 and
InceptionResNetV2 encoders, frozen or not, with BCE and focal. Its heart-tissue video is
not public, so it runs on the two cell time-lapses we have (HeLa, U373).

Every run is one ``unet-tf fit`` command; within a dataset every row has the same budget
(epochs x steps x batch, input size, Adam 1e-3 with the x0.75 step schedule at 50/75 %,
flips and rotations) and only the encoder, the freezing and the loss change. Each finished
run is scored with ``unet-tf evaluate`` on its validation images at full resolution (Dice,
IoU, CTC SEG of connected components, DRIVE inside the field of view), and the tables go
to ``docs/table1.md`` (with a figure, ``docs/table1.png``).

Seeds: every row runs seed 0; then, per study and dataset, the best scratch row and the
best transfer row by seed-0 Dice (the headline rows) run seeds 1 .. N-1 (``--seeds N``).
The split does not depend on the seed, so the spread is that of initialisation and
augmentation.

    .venv/bin/python experiments/table1.py --epochs 10 --steps 20       # both studies
    .venv/bin/python experiments/table1.py --study 1 --dataset hela --only dice-focal
    .venv/bin/python experiments/table1.py --quick                     # CI smoke, temp dir

Each run is a folder under ``--out``/BUDGET (e.g. ``runs/table1/256px-f32-e10x20x4``, so
runs of different budgets never mix); finished runs (``metrics.json``) are skipped and an
interrupted one resumes (``fit`` resumes on the identical command), so rerunning the same
command continues the grid. Heavy: on a shared machine run it under
``nice -n 19 flock /tmp/unet-heavy.lock``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    """A standard-library-only module of ``unet_tf`` without the package: ``import unet_tf``
    loads TensorFlow (seconds of CPU), and this driver only launches ``unet-tf`` processes
    and writes tables."""
    path = ROOT / "unet_tf" / f"{name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(f"unet_tf_{name.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_atomic = _load("atomic")
atomic_path, atomic_write_text = _atomic.atomic_path, _atomic.atomic_write_text
describe_cpu = _load("runtime.cpu").describe_cpu
SHARED = Path(os.environ.get("UNET_TF_SHARED", ROOT.parent / "shared"))
CTC = SHARED / "data" / "ctc"
DOC = ROOT / "docs" / "table1.md"
WEIGHTS = {  # no InceptionResNetV2 file in ../shared: that encoder starts from random weights
    "vgg16": SHARED / "weights" / "vgg16_imagenet_notop.h5",
    "resnet50": SHARED / "weights" / "resnet50_imagenet_notop.h5",
}


@dataclass(frozen=True)
class Dataset:
    """One column of the tables: how ``fit`` reads it, and whether SEG applies."""

    label: str
    args: tuple[str, ...]
    instances: bool


def datasets(size: int) -> dict[str, Dataset]:
    """The datasets at input size ``size``.

    The CTC frames are resized to ``size`` (the studies' 256 x 256 protocol); DRIVE trains
    on ``size`` px patches at full resolution, because its vessels are 1-8 px wide and a
    565 x 584 fundus resized to 256 px loses the thin ones (the evaluation is at full
    resolution, where a resized model could not see them). All train a binary foreground
    target (sigmoid), as both studies did; SEG then scores connected components.
    """
    binary = ("--target", "binary")
    return {
        "hela": Dataset(
            "CTC HeLa (DIC, 01, silver)",
            ("--data", str(CTC / "DIC-C2DH-HeLa"), "--format", "ctc", "--annotations", "st",
             "--size", str(size), *binary),
            instances=True,
        ),
        "u373": Dataset(
            "CTC U373 (PhC, 01, gold else silver)",
            ("--data", str(CTC / "PhC-C2DH-U373"), "--format", "ctc", "--annotations", "gt+st",
             "--size", str(size), *binary),
            instances=True,
        ),
        "drive": Dataset(
            "DRIVE (retina, FOV)",
            ("--data", str(SHARED / "data" / "drive" / "training"), "--format", "drive",
             "--val-split", "0.25", "--patch", str(size), "--fg-prob", "0.33", *binary),
            instances=False,
        ),
    }  # fmt: skip


ENCODERS = {
    "scratch": ("--backbone", "none"),
    **{
        f"{name}-{mode}": ("--backbone", name, "--freeze" if mode == "frozen" else "--no-freeze")
        for name in ("vgg16", "resnet50", "inceptionresnetv2")
        for mode in ("frozen", "finetuned")
    },
    # beyond the papers (--phased): frozen for 3 epochs, then everything at LR / 10
    "vgg16-phased": ("--backbone", "vgg16", "--freeze-epochs", "3"),
    "resnet50-phased": ("--backbone", "resnet50", "--freeze-epochs", "3"),
}
LOSSES = {
    "dice-focal": ("--loss", "dice-focal", "--focal-gamma", "0.9"),
    "focal-logdice": ("--loss", "focal-logdice", "--focal-gamma", "0.9"),
    "bce": ("--loss", "bce"),
    "focal": ("--loss", "focal", "--focal-alpha", "0.8"),
}


@dataclass(frozen=True)
class Study:
    title: str
    datasets: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]  # (encoder, loss)
    paper: dict[str, str]  # the paper's own numbers per dataset, side by side
    note: str


STUDIES = {
    "1": Study(
        "Study 1: scratch vs transfer (dice-focal and alpha * focal - log Dice)",
        ("hela", "u373", "drive"),
        tuple(
            (encoder, loss)
            for loss in ("dice-focal", "focal-logdice")
            for encoder in ENCODERS
            if not encoder.startswith("inception") and not encoder.endswith("phased")
        ),
        {"hela": "46 % → 67 %", "u373": "41 % → 76 %", "drive": "34 % → 82 %"},
        "*paper*: the first study's scratch → pretrained Dice (its union formula, its splits).",
    ),
    "2": Study(
        "Study 2: scratch vs ResNet50 / VGG16 / InceptionResNetV2, BCE vs focal",
        ("hela", "u373"),
        (
            ("scratch", "bce"),
            ("scratch", "focal"),
            *(
                (encoder, loss)
                for encoder in ENCODERS
                if encoder != "scratch" and not encoder.endswith("phased")
                for loss in ("bce", "focal")
            ),
        ),
        {},
        "*paper*: the second study's best Dice was 0.9457, on its own heart-cell video, which "
        "is not available (so no column for it).",
    ),
}
PHASED = (("vgg16-phased", "bce"), ("resnet50-phased", "bce"))  # added to study 2 by --phased


def run_name(dataset: str, encoder: str, loss: str, seed: int) -> str:
    return f"{dataset}-{encoder}-{loss}-s{seed}"


def unet_tf(args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "unet_tf.cli", *args]


def launch(args: list[str]) -> None:
    """Run one ``unet-tf`` command, printed first, as a child process (one TF per run)."""
    print("$", shlex.join(["unet-tf", *args]), flush=True)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(unet_tf(args), check=False, cwd=ROOT, env=env)


class Grid:
    """The runs of one invocation: their commands, their scores, and the stopping time."""

    def __init__(self, args: argparse.Namespace, data: dict[str, Dataset]):
        self.args = args
        self.data = data
        self.deadline = time.monotonic() + 60 * args.stop_after if args.stop_after else None

    def budget(self) -> list[str]:
        """The same for every row: epochs x steps x batch, Adam 1e-3, step schedule, flips."""
        a = self.args
        return [
            "--epochs", str(a.epochs), "--steps-per-epoch", str(a.steps),
            "--batch-size", str(a.batch), "--base-filters", str(a.base_filters),
            "--lr", "1e-3", "--lr-schedule", "step", "--augment", "hflip,vflip,rotate",
            *a.extra,
        ]  # fmt: skip

    def fit_args(self, dataset: str, encoder: str, loss: str, seed: int) -> list[str]:
        enc = list(ENCODERS[encoder])
        backbone = enc[1]
        if backbone in WEIGHTS:
            enc += ["--encoder-weights", str(WEIGHTS[backbone])]
        elif backbone != "none":
            enc += ["--encoder-weights", "none"]
        run_dir = self.args.runs / run_name(dataset, encoder, loss, seed)
        return [
            "fit", *self.data[dataset].args, *enc, *LOSSES[loss], *self.budget(),
            "--seed", str(seed), "--quiet", "--run-dir", str(run_dir),
        ]  # fmt: skip

    def scores(self, name: str) -> dict | None:
        """A finished run's evaluate scores and training times, or None if it did not finish."""
        metrics = self.args.runs / name / "metrics.json"
        scores = self.args.runs / "scores" / f"{name}.json"
        if not (metrics.exists() and scores.exists()):
            return None
        return {
            "eval": json.loads(scores.read_text()),
            "metrics": json.loads(metrics.read_text()),
        }

    def ensure(self, dataset: str, encoder: str, loss: str, seed: int) -> None:
        """Train and score one run unless it is done; launch nothing after the deadline."""
        name = run_name(dataset, encoder, loss, seed)
        run_dir = self.args.runs / name
        scores = self.args.runs / "scores" / f"{name}.json"
        if (run_dir / "metrics.json").exists() and scores.exists():
            return
        if self.deadline is not None and time.monotonic() > self.deadline:
            return
        if not (run_dir / "metrics.json").exists():
            launch(self.fit_args(dataset, encoder, loss, seed))
        if (run_dir / "metrics.json").exists() and not scores.exists():
            scores.parent.mkdir(parents=True, exist_ok=True)
            launch(["evaluate", str(run_dir), "--json", str(scores), "--quiet"])

    def dice(self, dataset: str, encoder: str, loss: str, seed: int) -> float | None:
        result = self.scores(run_name(dataset, encoder, loss, seed))
        return None if result is None else result["eval"]["mean"]["dice"]


def headline(grid: Grid, study: Study, dataset: str) -> list[tuple[str, str]]:
    """The best finished scratch row and the best finished transfer row by seed-0 Dice."""
    best: list[tuple[str, str]] = []
    for scratch in (True, False):
        scored = [
            (dice, row)
            for row in study.rows
            if (row[0] == "scratch") == scratch
            and (dice := grid.dice(dataset, *row, 0)) is not None
        ]
        if scored:
            best.append(max(scored)[1])
    return best


def fmt_stat(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def cell(grid: Grid, dataset: str, encoder: str, loss: str) -> tuple[str, list[float]]:
    """``Dice mean ± sd (n)<br>IoU, SEG, CPU min`` over the finished seeds, or "not run"."""
    prefix = run_name(dataset, encoder, loss, 0)[:-1]  # every seed run so far, not only --seeds
    found = [
        r
        for run_dir in sorted(grid.args.runs.glob(f"{prefix}*"))
        if run_dir.name[len(prefix) :].isdigit() and (r := grid.scores(run_dir.name)) is not None
    ]
    if not found:
        return "not run", []
    dice = [r["eval"]["mean"]["dice"] for r in found]
    parts = [f"IoU {fmt_stat([r['eval']['mean']['iou'] for r in found])}"]
    if grid.data[dataset].instances:
        parts.append(f"SEG {fmt_stat([r['eval']['mean']['seg'] for r in found])}")
    cpu = statistics.mean(r["metrics"]["train_cpu_seconds"] for r in found) / 60
    parts.append(f"{cpu:.1f} CPU min")
    return f"**{fmt_stat(dice)}** ({len(found)})<br>{' · '.join(parts)}", dice


def cpu_total(grid: Grid) -> tuple[int, float]:
    """The finished runs in the grid's folder and their training CPU hours, in all."""
    found = [
        r
        for run_dir in sorted(grid.args.runs.iterdir())
        if run_dir.is_dir() and (r := grid.scores(run_dir.name)) is not None
    ]
    return len(found), sum(r["metrics"]["train_cpu_seconds"] for r in found) / 3600


def machine() -> str:
    """The CPU as the tables name it (every run here is on CPUs)."""
    return f"{describe_cpu()}, no GPU"


def study_table(grid: Grid, key: str, study: Study) -> tuple[str, dict]:
    """The Markdown table of one study, and Dice per (row, dataset) for the figure."""
    cols = [d for d in study.datasets if d in grid.data]
    lines = [
        "| encoder | loss | " + " | ".join(grid.data[d].label for d in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    if study.paper:
        lines.append("| *paper* | | " + " | ".join(study.paper.get(d, "") for d in cols) + " |")
    figure = {}
    for encoder, loss in study.rows:
        cells = []
        for d in cols:
            text, dice = cell(grid, d, encoder, loss)
            cells.append(text)
            if dice:
                figure[(f"{encoder} {loss}", d)] = dice
        weights = ""
        if encoder.startswith("inception"):
            weights = " (random init: no ImageNet file)"
        lines.append(f"| {encoder}{weights} | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{study.note}", figure


def plot(figures: dict[str, dict], labels: dict[str, str], target: Path) -> bool:
    """Dice per configuration with seed error bars, one panel per study; False if nothing ran."""
    figures = {title: values for title, values in figures.items() if values}
    if not figures:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(figures), figsize=(7 * len(figures), 5), squeeze=False)
    for ax, (title, values) in zip(axes[0], figures.items(), strict=True):
        rows = list(dict.fromkeys(row for row, _ in values))  # in table order
        cols = sorted({d for _, d in values})
        width = 0.8 / max(len(cols), 1)
        for j, d in enumerate(cols):
            xs, ys, es = [], [], []
            for i, row in enumerate(rows):
                if (row, d) in values:
                    v = values[(row, d)]
                    xs.append(i + (j - (len(cols) - 1) / 2) * width)
                    ys.append(statistics.mean(v))
                    es.append(statistics.stdev(v) if len(v) > 1 else 0.0)
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=labels[d])
        ax.set_xticks(range(len(rows)), rows, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("validation Dice (mean ± sd over seeds)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return True


HEADER = """# Table 1 of the two transfer-learning studies, measured here

Both studies' Table 1 (scratch U-Net vs ImageNet encoders) rerun with `unet-tf` on the
data in ../shared, and the random vs blocked validation split measured on the same
time-lapses. Each section is written by its script (`experiments/table1.py`,
`experiments/splits.py`) between its markers; rerunning the script rewrites it from the
finished runs.
"""


def write_section(doc: Path, key: str, body: str) -> None:
    """Replace the ``key`` section of ``doc`` (between its markers), keeping the others."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    text = doc.read_text() if doc.exists() else HEADER
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(doc, text)


def report(grid: Grid, studies: dict[str, Study], command: str) -> str:
    a = grid.args
    tables, figures = [], {}
    for key, study in studies.items():
        table, values = study_table(grid, key, study)
        tables.append(f"### {study.title}\n\n{table}")
        figures[study.title.split(":")[0]] = values
    labels = {d: grid.data[d].label for d in grid.data}
    png = a.doc.with_suffix(".png")
    figure = f"![Dice per configuration]({png.name})\n\n" if plot(figures, labels, png) else ""
    budget = (
        f"{a.epochs} epochs x {a.steps} steps x batch {a.batch} = "
        f"{a.epochs * a.steps * a.batch} training images per run"
    )
    extra = f" Extra options: `{' '.join(a.extra)}`." if a.extra else ""
    runs, hours = cpu_total(grid)
    return f"""## Table 1 grid

Generated by `experiments/table1.py` on {datetime.date.today().isoformat()}; machine:
{machine()}.
Reproduce or continue (finished runs are skipped, an interrupted one resumes):

```bash
{command}
```

- **Budget, the same for every row and dataset**: {budget}; input {a.size} x {a.size}
  (CTC frames resized to it; DRIVE: random {a.size} px patches at full resolution, 1 in 3
  centred on a vessel, because 1-8 px vessels vanish when a 565 x 584 fundus is resized to
  {a.size} px); base filters {a.base_filters}; Adam 1e-3 with x0.75 steps at 50 % and 75 %
  of the epochs; horizontal and vertical flips, rotations up to ±180° (reflected
  borders); binary foreground target.{extra}
  The studies trained far longer: these are small-budget numbers.
- **Validation**: CTC sequence 01 only (there is no second sequence in ../shared), a
  blocked 20 % block of frames with 3 frames left out on each side (`fit`'s default);
  DRIVE: 5 of its 20 training images (seeded). Scored at full resolution by
  `unet-tf evaluate RUN` (DRIVE inside the field of view).
- **Dice** = 2|A∩B| / (|A| + |B|), the mean over validation images, at threshold 0.5 —
  not the first study's union formula, so its numbers are not directly comparable.
  IoU likewise; SEG is the CTC measure on connected components of the binary mask.
- **Cells**: Dice mean ± sd (number of seeds); IoU and SEG mean; CPU minutes of training
  per run (`train_cpu_seconds`). "not run": no finished run, never an estimate.
- **CPU time in all**: {runs} finished runs, {hours:.1f} CPU hours of training (scoring
  and evaluation not included).
- **Seeds**: every row runs seed 0; per study and dataset the best scratch row and the best
  transfer row (by seed-0 Dice) run {a.seeds} seeds. The split is the same for every seed.
- **Encoders**: VGG16 and ResNet50 start from ImageNet (`../shared/weights`, local .h5);
  InceptionResNetV2 has no weights file there and runs from random initialisation.
- **Study 2's data**: its heart-tissue video is not available; it runs on HeLa and U373,
  the two cell time-lapses we have.

{figure}{(chr(10) * 2).join(tables)}
"""


def quick_data(tmp: Path) -> Path:
    """The first 12 HeLa frames and their silver masks, copied into ``tmp``."""
    src = CTC / "DIC-C2DH-HeLa"
    for sub in ("01", "01_ST/SEG"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    for t in range(12):
        shutil.copy(src / "01" / f"t{t:03d}.tif", tmp / "01")
        shutil.copy(src / "01_ST" / "SEG" / f"man_seg{t:03d}.tif", tmp / "01_ST" / "SEG")
    return tmp


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "table1")
    parser.add_argument("--doc", type=Path, default=DOC, help="Markdown file [docs/table1.md]")
    parser.add_argument(
        "--study", action="append", choices=sorted(STUDIES), default=[],
        help="train only this study's rows (repeatable); the doc shows both",
    )  # fmt: skip
    parser.add_argument(
        "--dataset", action="append", choices=["hela", "u373", "drive"], default=[],
        help="train only on this dataset (repeatable); the tables show every dataset",
    )  # fmt: skip
    parser.add_argument(
        "--only", action="append", default=[],
        help="train only rows whose encoder or loss has this part, e.g. scratch, vgg16, "
        "frozen, dice-focal (repeatable: all must match)",
    )  # fmt: skip
    parser.add_argument(
        "--row", action="append", default=[], metavar="ENCODER/LOSS",
        help="train only these rows, e.g. scratch/dice-focal (repeatable: any may match)",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the headline rows [3]")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch [20]")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="input size / DRIVE patch [256]")
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--phased", action="store_true", help="add --freeze-epochs 3 rows")
    parser.add_argument(
        "--precision", choices=["auto", "float32", "mixed_bfloat16"], default="auto",
        help="fit's --precision [auto]; the 2026-11-29 grid pinned mixed_bfloat16, which "
        "auto chose when its first rows ran, so all its rows compute alike",
    )  # fmt: skip
    parser.add_argument(
        "--stop-after", type=float, help="launch no new run after this many minutes"
    )
    parser.add_argument("--table-only", action="store_true", help="write the doc, train nothing")
    parser.add_argument(
        "--quick", action="store_true",
        help="CI smoke: 12 HeLa frames at 64 px, 1 epoch x 2 steps, 2 rows, 1 seed, temp output",
    )  # fmt: skip
    args = parser.parse_args(argv)
    rows = {f"{encoder}/{loss}" for encoder in ENCODERS for loss in LOSSES}
    parts = {part for row in rows for part in (*row.split("/"), *row.split("/")[0].split("-"))}
    if unknown := sorted(set(args.row) - rows) + sorted(set(args.only) - parts):
        parser.error(f"unknown --row/--only {unknown}; rows are ENCODER/LOSS from {sorted(rows)}")
    args.extra = [] if args.precision == "auto" else ["--precision", args.precision]
    if args.quick:
        out = (
            Path(tempfile.mkdtemp(prefix="table1-quick-"))
            if args.out == parser.get_default("out")
            else args.out
        )
        args.out, args.seeds, args.epochs, args.steps, args.batch = out, 1, 1, 2, 2
        args.size, args.base_filters = 64, 4
        args.extra = ["--depth", "2", "--precision", "float32"]
        if args.doc == DOC:
            args.doc = out / "table1.md"
    args.out = args.out.resolve()
    # One folder per budget: a run of another budget is never skipped as "finished" here.
    tag = f"{args.size}px-f{args.base_filters}-e{args.epochs}x{args.steps}x{args.batch}"
    args.runs = args.out / tag
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    data = datasets(args.size)
    studies = dict(STUDIES)
    if args.phased:
        s = studies["2"]
        studies["2"] = Study(s.title, s.datasets, (*s.rows, *PHASED), s.paper, s.note)
    if args.quick:
        hela = data["hela"]
        copy = quick_data(args.out / "data" / "hela")
        args_ = list(hela.args)
        args_[args_.index("--data") + 1] = str(copy)
        data = {"hela": Dataset("HeLa, first 12 frames", tuple(args_), True)}
        studies = {
            k: Study(s.title, ("hela",), (s.rows[0],), s.paper, s.note) for k, s in studies.items()
        }

    def selected(key: str, dataset: str, row: tuple[str, str]) -> bool:
        """Whether this invocation trains the row; the tables always show the whole grid."""
        parts = {row[0], row[1], *row[0].split("-")}
        return (
            (not args.study or key in args.study)
            and (not args.dataset or dataset in args.dataset)
            and all(o in parts for o in args.only)
            and (not args.row or "/".join(row) in args.row)
        )

    grid = Grid(args, data)
    if not args.table_only:
        for key, study in studies.items():  # seed 0 of every row: a cut-short grid is a table
            for dataset in study.datasets:
                for row in study.rows:
                    if selected(key, dataset, row):
                        grid.ensure(dataset, *row, 0)
        for key, study in studies.items():  # then the extra seeds of the headline rows
            for dataset in study.datasets:
                for row in headline(grid, study, dataset):
                    if selected(key, dataset, row):
                        for seed in range(1, args.seeds):
                            grid.ensure(dataset, *row, seed)
    whole = [  # the whole grid at this budget, whatever this invocation's filters were
        "--epochs", args.epochs, "--steps", args.steps, "--batch", args.batch, "--size",
        args.size, "--base-filters", args.base_filters, "--seeds", args.seeds,
    ]  # fmt: skip
    if args.phased:
        whole.append("--phased")
    if args.quick:
        whole = ["--quick"]
    command = "nice -n 19 flock /tmp/unet-heavy.lock .venv/bin/python experiments/table1.py "
    write_section(args.doc, "table1", report(grid, studies, command + shlex.join(map(str, whole))))
    print(f"tables written to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
