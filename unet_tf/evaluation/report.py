"""``evaluate --report DIR``: the tables and figures a paper or a lab notebook needs.

Writes ``report.md`` (Markdown) and ``scores.csv`` (one row per image, then mean,
std and dataset rows), ``panels/NAME.png`` per image (input | ground truth |
prediction | overlay, true positives green, false positives magenta, false
negatives cyan, as in the papers' figures), ``curves.png`` (loss and Dice per epoch
from the run's ``history.csv``, like the first study's Figure 7) and
``histogram.png`` (probabilities of true foreground and background pixels).

Figures use matplotlib's object API with the Agg canvas: no display, no global state.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from unet_tf.atomic import atomic_path, atomic_write_text
from unet_tf.data.io import write_png
from unet_tf.data.sample import Sample
from unet_tf.data.targets import scored_classes, truth_labels
from unet_tf.errors import UserError
from unet_tf.evaluation.scoring import Evaluation
from unet_tf.inference.predictor import Predictor, to_mask
from unet_tf.rundir import check_new_outputs, read_history
from unet_tf.viz import panel

PANEL_MAX_SIDE = 2048  # larger panels are shrunk: a 10k-pixel-wide PNG helps nobody
FILES = ("report.md", "scores.csv", "curves.png", "histogram.png")


class ReportWriter:
    """Collects panels while ``evaluate`` runs, then writes the tables and figures."""

    def __init__(self, out: Path, predictor: Predictor, overwrite: bool = False):
        self.out = Path(out)
        self.predictor = predictor
        self.panels: list[Path] = []
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"--report {self.out} is a file; choose a folder")
        panels = self.out / "panels"
        existing_panels = sorted(panels.iterdir()) if panels.is_dir() else []
        outputs = [self.out / name for name in FILES] + existing_panels
        check_new_outputs(outputs, "--report", overwrite, holds="a report")
        panels.mkdir(parents=True, exist_ok=True)

    def add(self, sample: Sample, probs: np.ndarray) -> None:
        """Write the panel of one image (called by ``evaluate_samples`` per image)."""
        cfg = self.predictor.cfg
        pred = to_mask(probs, self.predictor.threshold, cfg.data.target) > 0
        classes = scored_classes(cfg.model.num_classes, cfg.data.target)
        truth = truth_labels(sample.mask, classes, cfg.data.mask_threshold) > 0
        if sample.fov is not None:  # outside the field of view nothing is scored
            pred, truth = pred & sample.fov, truth & sample.fov
        picture = shrink(panel(sample.image, pred, truth), PANEL_MAX_SIDE)
        path = self.out / "panels" / f"{sample.name}.png"
        write_png(path, picture)
        self.panels.append(path)

    def finish(
        self, evaluation: Evaluation, title: str = "Evaluation", provenance: dict | None = None
    ) -> list[Path]:
        """Write the CSV, the figures and the Markdown report; return the files written.

        ``provenance`` (see ``unet_tf.evaluation.provenance``) becomes the report's
        "What was scored" section.
        """
        written = [write_csv(self.out / "scores.csv", evaluation)]
        written.append(plot_histogram(self.out / "histogram.png", evaluation, self.predictor))
        history = self.predictor.history
        curves = plot_curves(self.out / "curves.png", history) if history else None
        if curves:
            written.append(curves)
        report = self.out / "report.md"
        text = markdown(evaluation, title, self.predictor, curves, self.panels, provenance)
        atomic_write_text(report, text)
        return [report, *written, *self.panels]


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (area filter) so that neither side exceeds ``max_side``."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _summary_rows(evaluation: Evaluation) -> list[tuple[str, dict]]:
    return [
        ("mean", evaluation.mean()),
        ("std", evaluation.std()),
        ("dataset", evaluation.dataset()),
    ]


def write_csv(path: Path, evaluation: Evaluation) -> Path:
    columns = evaluation.columns
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", *columns])
        for row in evaluation.images:
            writer.writerow([row["name"], *(f"{row[k]:.6f}" for k in columns)])
        for name, values in _summary_rows(evaluation):
            writer.writerow([name, *(f"{values[k]:.6f}" for k in columns)])
    return path


def markdown(
    evaluation: Evaluation,
    title: str,
    predictor: Predictor,
    curves: Path | None,
    panels: list[Path],
    provenance: dict | None = None,
) -> str:
    """The report: settings, what was scored, the score table with mean ± std, figures."""
    columns = evaluation.columns
    lines = [
        f"# {title}",
        "",
        f"Inference: {predictor.describe()}.",
        "",
        *provenance_lines(provenance),
        "| image | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for row in evaluation.images:
        lines.append(f"| {row['name']} | " + " | ".join(f"{row[k]:.4f}" for k in columns) + " |")
    mean, std, dataset = evaluation.mean(), evaluation.std(), evaluation.dataset()
    lines.append(
        "| **mean ± std** | " + " | ".join(f"{mean[k]:.4f} ± {std[k]:.4f}" for k in columns) + " |"
    )
    lines.append("| **dataset** | " + " | ".join(f"{dataset[k]:.4f}" for k in columns) + " |")
    lines += [
        "",
        "*dataset*: scores of the pooled pixels (and pooled reference objects for SEG).",
        "",
        f"{evaluation.histogram.describe().capitalize()}.",
        "",
        "![probability histogram](histogram.png)",
        "",
    ]
    if curves:
        lines += ["## Training curves", "", "![training curves](curves.png)", ""]
    lines += ["## Images", ""]
    lines += [f"### {p.stem}\n\n![{p.stem}](panels/{quote(p.name)})\n" for p in panels]
    return "\n".join(lines)


def provenance_lines(provenance: dict | None) -> list[str]:
    """Markdown for what was scored: model and its sha256, version, data, subset, overlap."""
    if provenance is None:
        return []
    p = provenance
    lines = [
        "## What was scored",
        "",
        f"- model: `{p['model']}` (sha256 `{p['model_sha256'] or 'unknown'}`)",
        f"- unet-tf {p['unet_tf_version']}, threshold {p['threshold']:g}",
        f"- data: `{p['data']}` ({p['format']}), subset {p['subset']}, {len(p['images'])} image(s)",
    ]
    trained = p["used_in_training"]
    if trained:
        lines.append(
            f"- **{len(trained)} of these images were used to train the model; their scores "
            f"are optimistic**: {', '.join(trained)}"
        )
    elif p["checked_against_training_record"]:
        lines.append("- none of these images was used to train the model (by content hash)")
    return [*lines, ""]


def plot_histogram(path: Path, evaluation: Evaluation, predictor: Predictor) -> Path:
    """Share of foreground and of background pixels per probability bin (log scale)."""
    edges, fg, bg = evaluation.histogram.coarse(50)
    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = figure.add_subplot()
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    for counts, label, colour in ((bg, "background", "tab:blue"), (fg, "foreground", "tab:red")):
        if counts.sum():
            share = counts / counts.sum()
            ax.bar(centres, share, width=width, alpha=0.55, color=colour, label=label)
    ax.axvline(predictor.threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("predicted foreground probability")
    ax.set_ylabel("share of the class's pixels")
    ax.set_title("How certain is the model? (true foreground vs true background)")
    ax.legend(loc="best")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


def plot_curves(path: Path, history: Path) -> Path | None:
    """Loss and Dice per epoch, training and validation, with the best epoch marked."""
    columns = read_history(history)
    if "loss" not in columns:
        return None
    # Epochs are numbered from 1; files written before that rule started at 0.
    epochs = columns.get("epoch", np.arange(len(columns["loss"])))
    epochs = epochs + 1 if epochs[0] == 0 else epochs
    figure = Figure(figsize=(10, 3.8), dpi=120)
    for i, metric in enumerate(("loss", "dice")):
        ax = figure.add_subplot(1, 2, i + 1)
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in columns:
                ax.plot(epochs, columns[key], marker="o", markersize=3, label=label)
        if "val_dice" in columns:
            best = epochs[int(np.argmax(columns["val_dice"]))]
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best:g})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric.capitalize())
        ax.set_title(f"{metric.capitalize()} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
