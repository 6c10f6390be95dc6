"""``unet-tf tune``: KerasTuner searches the recipe; every trial is an ordinary run.

The first study tuned its recipe by hand (46% -> 67% Dice on HeLa). Here KerasTuner's
Bayesian optimisation (or random search) proposes the learning rate, loss (with the
focal gamma and the alpha of alpha * focal - log(Dice)), batch size, width, backbone and
freezing, plain or residual levels and attention gates (if asked), input size (resize or
patches) and augmentation strength. Each trial is ``fit`` into ``RUN/trials/<id>/``,
scored like ``evaluate`` scores (validation Dice at full resolution, not the per-batch
metric), and the Keras session is cleared between trials so memory stays bounded.
``RUN/search/`` is KerasTuner's own state, so rerunning the same command resumes the
search; a trial cut short resumes its run directory.

The result: ``trials.csv`` (one row per trial), ``tune.png`` (score per trial and best
so far) and ``best.yaml``, the best trial's config, which ``fit --config`` accepts.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
from matplotlib.figure import Figure

from unet_tf.atomic import atomic_path, atomic_write_text
from unet_tf.config import ATTENTION, BLOCKS, SM_PREFIX, RunConfig
from unet_tf.errors import UserError
from unet_tf.rundir import CONFIG, is_ours, run_lock, write_marker
from unet_tf.training.fit import fit

SEARCH, TRIALS, TABLE, PLOT, BEST = "search", "trials", "trials.csv", "tune.png", "best.yaml"
TUNERS = ("bayesian", "random")
AUGMENTATIONS = {
    "light": ["hflip", "vflip"],
    "standard": ["hflip", "vflip", "rotate"],
    "strong": ["hflip", "vflip", "rotate", "brightness-contrast", "elastic"],
}
OBJECTIVE = "val_dice"


@dataclass(frozen=True)
class SearchSpace:
    """The values each hyper-parameter may take (narrow it for quick searches)."""

    lr: tuple[float, float] = (1e-4, 3e-3)  # log-uniform
    losses: tuple[str, ...] = ("dice-focal", "focal-logdice", "bce", "focal")
    focal_gamma: tuple[float, float] = (0.5, 2.5)
    logdice_weight: tuple[float, float] = (0.5, 2.0)  # alpha in alpha * focal - log(Dice)
    batch_sizes: tuple[int, ...] = (2, 4, 8)
    base_filters: tuple[int, ...] = (16, 32)
    backbones: tuple[str, ...] = ("none",)
    blocks: tuple[str, ...] = ("plain",)  # config.BLOCKS: a level with or without a shortcut
    attention: tuple[str, ...] = ("off",)  # ATTENTION
    inputs: tuple[str, ...] = ("resize", "patch")
    sides: tuple[int, ...] = (128, 256)
    augmentations: tuple[str, ...] = tuple(AUGMENTATIONS)

    def declare(self, hp: Any) -> None:
        """Register every hyper-parameter with KerasTuner before the first trial."""
        hp.Float("lr", *self.lr, sampling="log")
        hp.Choice("loss", list(self.losses))
        hp.Float("focal_gamma", *self.focal_gamma)
        hp.Float("logdice_weight", *self.logdice_weight)
        hp.Choice("batch_size", list(self.batch_sizes))
        hp.Choice("base_filters", list(self.base_filters))
        hp.Choice("backbone", list(self.backbones))
        hp.Choice("block", list(self.blocks))
        hp.Choice("attention", list(self.attention))
        hp.Boolean("freeze")
        hp.Choice("input", list(self.inputs))
        hp.Choice("side", list(self.sides))
        hp.Choice("augment", list(self.augmentations))


def trial_config(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``base`` with one trial's hyper-parameters applied (a new config)."""
    patch = values["input"] == "patch"
    pretrained = values["backbone"] != "none"
    # segmentation-models builds its own decoder: plain levels and no gates, as fit requires
    own_decoder = not values["backbone"].startswith(SM_PREFIX)
    # a search begun before blocks or gates were searched keeps the base's on resume
    block = values.get("block", base.model.block) if own_decoder else "plain"
    attention = values["attention"] == "on" if "attention" in values else base.model.attention
    return replace(
        base,
        model=replace(
            base.model,
            backbone=values["backbone"],
            # an encoder has its own levels; a base planned for the scratch U-Net has a depth
            depth=None if pretrained else base.model.depth,
            block=block,
            attention=attention and own_decoder,
            base_filters=values["base_filters"],
            freeze=bool(values["freeze"]) and pretrained,
        ),
        data=replace(
            base.data,
            size=base.data.size if patch else values["side"],
            patch=values["side"] if patch else None,
            augment=list(AUGMENTATIONS[values["augment"]]),
        ),
        train=replace(
            base.train,
            lr=values["lr"],
            loss=values["loss"],
            focal_gamma=values["focal_gamma"] if "focal" in values["loss"] else None,
            logdice_weight=values["logdice_weight"],
            batch_size=values["batch_size"],
        ),
    )


@dataclass
class TuneResult:
    run_dir: Path
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def _kt():
    try:
        import keras_tuner
    except ImportError:
        raise UserError(
            'unet-tf tune needs KerasTuner: pip install "unet-tf[tune]" (keras-tuner)'
        ) from None
    return keras_tuner


def tune(
    base: RunConfig,
    run_dir: Path,
    max_trials: int,
    budget_seconds: float | None = None,
    tuner: str = "bayesian",
    space: SearchSpace | None = None,
    verbose: int = 0,
    log: Callable[[str], None] = print,
) -> TuneResult:
    """Search ``space`` around ``base`` for at most ``max_trials`` trials or the budget."""
    kt = _kt()
    if tuner not in TUNERS:
        raise UserError(f"unknown tuner {tuner!r} (--tuner); choose one of {', '.join(TUNERS)}")
    if tuner == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise UserError(
            "--tuner bayesian needs scikit-learn (KerasTuner's Gaussian process): "
            'pip install "unet-tf[tune]", or search with --tuner random'
        )
    if max_trials < 1:
        raise UserError("--max-trials must be at least 1")
    space = space or SearchSpace()
    for option, values, known in (
        ("--blocks", space.blocks, BLOCKS),
        ("--attention", space.attention, ATTENTION),
    ):
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UserError(f"{option} {','.join(unknown)}: choose from {', '.join(known)}")
    if base.data.val is None and base.data.val_split == 0:
        raise UserError("tune scores validation images: leave --val-split above 0")
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()) and not is_ours(run_dir, "search"):
        raise UserError(f"{run_dir} exists and is not a unet-tf search; choose a new --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    hp = kt.HyperParameters()
    space.declare(hp)
    objective = kt.Objective(OBJECTIVE, direction="max")
    oracle_type = (
        kt.oracles.BayesianOptimizationOracle
        if tuner == "bayesian"
        else kt.oracles.RandomSearchOracle
    )
    oracle = oracle_type(
        objective=objective,
        max_trials=max_trials,
        hyperparameters=hp,
        tune_new_entries=False,
        seed=base.train.seed,
    )

    class RunTuner(kt.Tuner):
        """A KerasTuner tuner whose trial is a whole unet-tf run (``fit``)."""

        def run_trial(self, trial, *args, **kwargs):
            cfg = trial_config(base, trial.hyperparameters.values)
            trial_dir = run_dir / TRIALS / trial.trial_id
            log(f"trial {trial.trial_id}: {_describe(trial.hyperparameters.values)}")
            started = time.perf_counter()
            result = fit(cfg, trial_dir, verbose=verbose, log=lambda _: None)
            keras.backend.clear_session()  # bounded memory across trials
            durations.append(time.perf_counter() - started)
            score = result.metrics["validation"]["mean"]["dice"]
            log(f"trial {trial.trial_id}: validation Dice {score:.4f} at full resolution")
            return {OBJECTIVE: score}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            spent = time.perf_counter() - search_started
            mean = sum(durations) / len(durations) if durations else 0.0
            if budget_seconds and spent + mean > budget_seconds:
                log(f"budget: {spent / 60:.1f} of {budget_seconds / 60:.0f} min spent; stopping")
                self.oracle.max_trials = len(self.oracle.trials)  # create_trial now stops

    with run_lock(run_dir):
        write_marker(run_dir, "search")
        durations: list[float] = []
        search_started = time.perf_counter()
        searcher = RunTuner(oracle, directory=str(run_dir), project_name=SEARCH, overwrite=False)
        searcher.search()
        return write_results(run_dir, searcher.oracle)


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.2g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


def write_results(run_dir: Path, oracle: Any) -> TuneResult:
    """trials.csv, tune.png and best.yaml from the finished trials, in trial order."""
    rows = []
    for trial_id, trial in sorted(oracle.trials.items(), key=lambda item: int(item[0])):
        if trial.score is None:
            continue
        rows.append({"trial": trial_id, "val_dice": trial.score, **trial.hyperparameters.values})
    if not rows:
        raise UserError(f"no trial of {run_dir} finished; rerun the same command to resume")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / TABLE, buffer.getvalue())
    best = max(rows, key=lambda row: row["val_dice"])
    with atomic_path(run_dir / BEST) as tmp:
        shutil.copyfile(run_dir / TRIALS / best["trial"] / CONFIG, tmp)
    plot_search(run_dir / PLOT, [row["val_dice"] for row in rows])
    return TuneResult(run_dir, rows, best)


def plot_search(path: Path, scores: list[float]) -> None:
    """Score per trial and the best so far, the usual picture of a search."""
    figure = Figure(figsize=(6, 3.5), dpi=120)
    ax = figure.subplots()
    trials = range(1, len(scores) + 1)
    best = [max(scores[:i]) for i in trials]
    ax.plot(trials, scores, "o", label="trial")
    ax.step(trials, best, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation Dice (full resolution)")
    ax.legend(loc="lower right")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
