"""The recipe ``fit`` trains: the plan by default, the user's explicit settings on top.

``fit`` without ``--size``/``--patch`` fingerprints its training data and takes the
plan's recipe settings (:data:`RECIPE`); every setting the user gave (a flag, a key of
the ``--config`` file, a keyword of ``unet_tf.fit``) wins over the plan. With a budget
the planned (or given) network's step is timed here and the budget becomes whole epochs
of steps (:func:`~unet_tf.planning.rules.budget_epochs`), recorded in the config so the
LR schedule is laid over them and a resumed run keeps them.

A run that resumes takes its recipe from its saved ``config.yaml``: planning again
could decide differently (a budget's timing varies), and the run must go on as it began.

This sits above ``training`` (it reads the data as ``fit`` does and times its steps),
so ``training`` itself never plans: it trains the config it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import is_time_series
from unet_tf.data.pipeline import steps_per_epoch
from unet_tf.planning.fingerprint import fingerprint
from unet_tf.planning.rules import (
    EPOCH_VALIDATION_SHARE,
    VALIDATION_SHARE,
    Plan,
    budget_epochs,
    derive_plan,
    same_steps_epochs,
)
from unet_tf.planning.timing import StepTiming, time_steps, time_validation
from unet_tf.rundir import CONFIG, METRICS
from unet_tf.training.fit import load_training_data

# The settings the plan decides, as "section.field"; the budget decides the last one.
RECIPE = (
    "data.target",
    "data.border_width",
    "data.size",
    "data.patch",
    "data.fg_prob",
    "data.augment",
    "data.steps_per_epoch",
    "model.depth",
    "model.base_filters",
    "train.batch_size",
    "train.loss",
    "train.threshold",
    "train.epochs",
    "train.budget_steps",
    "postprocess.min_size",
)
INPUT = frozenset({"data.size", "data.patch"})  # given: the user chose the recipe's core
# Which settings each of the plan's reasons explains.
EXPLAINS = {
    "target": ("data.target",),
    "border_width": ("data.border_width",),
    "input": ("data.size", "data.patch"),
    "depth": ("model.depth",),
    "batch_size": ("train.batch_size",),
    "fg_prob": ("data.fg_prob",),
    "loss": ("train.loss",),
    "threshold": ("train.threshold",),
    "augment": ("data.augment",),
    "base_filters": ("model.base_filters",),
    "epochs": ("train.epochs", "data.steps_per_epoch"),
    "min_size": ("postprocess.min_size",),
}
SECTIONS = ("model", "data", "train", "postprocess")


def setting_path(name: str) -> str | None:
    """``"section.field"`` of the config field called ``name``; None if there is none."""
    defaults = RunConfig()
    for section in SECTIONS:
        if name in {f.name for f in fields(getattr(defaults, section))}:
            return f"{section}.{name}"
    return None


def changed_settings(cfg: RunConfig) -> set[str]:
    """The settings of ``cfg`` that differ from the defaults (a config built in Python)."""
    defaults = RunConfig()
    return {
        f"{section}.{f.name}"
        for section in SECTIONS
        for f in fields(getattr(cfg, section))
        if getattr(getattr(cfg, section), f.name) != getattr(getattr(defaults, section), f.name)
    }


def _value(cfg: RunConfig, path: str) -> Any:
    section, name = path.split(".")
    return getattr(getattr(cfg, section), name)


def merge(chosen: RunConfig, requested: RunConfig, explicit: Collection[str]) -> RunConfig:
    """``requested`` with ``chosen``'s recipe settings, except those given explicitly."""
    changes: dict[str, dict[str, Any]] = {}
    for path in RECIPE:
        if path not in explicit:
            section, name = path.split(".")
            changes.setdefault(section, {})[name] = _value(chosen, path)
    return replace(
        requested,
        **{s: replace(getattr(requested, s), **values) for s, values in changes.items()},
    )


def wants_plan(cfg: RunConfig, explicit: Collection[str]) -> bool:
    """Plan unless the input size or patch was given, or ``cfg`` is a plan or a run's config."""
    return not (INPUT & set(explicit)) and cfg.plan is None and not cfg.version


def plan_lines(
    plan: Plan,
    given: Collection[str] = (),
    skip: Collection[str] = (),
    revised: Mapping[str, str] | None = None,
) -> list[str]:
    """The fingerprint in one line, then each choice with its reason (but ``skip``'s).

    ``revised`` holds the reasons as ``fit`` recorded them, which may differ from the
    plan's (longer epochs when validation is slow), so the console shows the choice
    that trains, once.
    """
    fp = plan.fingerprint
    lines = [
        f"{fp.images} image(s), median {fp.median_width}x{fp.median_height} px, "
        f"{fp.channels} channel(s), {fp.bit_depth}-bit; foreground "
        f"{100 * fp.foreground_fraction:.1f}%; {fp.object_count} object(s) per image of "
        f"~{fp.object_diameter:.0f} px; thin-structure score {fp.thin_score:.2f}"
        f"{'; a time series' if fp.time_series else ''}"
    ]
    reasons = {**given_reasons(plan, given), **(revised or {})}
    lines += [f"  {key:<13} {why}" for key, why in reasons.items() if key not in skip]
    return lines


def given_reasons(plan: Plan, given: Collection[str]) -> dict[str, str]:
    """The plan's reasons, with those of the settings the user gave replaced by their values."""
    reasons = dict(plan.reasons)
    for key, paths in EXPLAINS.items():
        kept = [p for p in paths if p in given]
        if key in reasons and kept:
            values = ", ".join(f"{p.split('.')[1]} {_value(plan.config, p)!r}" for p in kept)
            reasons[key] = f"yours (the plan chose {values})"
    return reasons


def unfinished_config(
    run_dir: Path | None, overwrite: bool, all_folds: bool = False
) -> RunConfig | None:
    """The saved config of the unfinished run that ``fit`` into ``run_dir`` would resume.

    For a fold ensemble (``all_folds``), the recipe of any fold already begun: the
    folds of one ensemble share it, so a resumed ensemble neither plans nor times its
    steps again, and its later folds train what its first ones did.
    """
    if run_dir is None or overwrite:
        return None
    run_dir = Path(run_dir)
    if all_folds:
        begun = sorted(run_dir.glob(f"fold_*/{CONFIG}"))
        return RunConfig.load(begun[0]) if begun else None
    if not (run_dir / CONFIG).is_file() or (run_dir / METRICS).exists():
        return None
    return RunConfig.load(run_dir / CONFIG)


def per_fold_budget(cfg: RunConfig, log: Callable[[str], None]) -> RunConfig:
    """``cfg`` with its ``--budget`` shared by the folds of an ensemble.

    The budget covers the whole ensemble, so a fold ensemble and a single run compare
    at the same CPU time (issue 13's measurement), and ``--budget 20m`` means 20 minutes.
    """
    folds, budget = cfg.data.folds, cfg.train.budget_seconds
    if not budget or folds < 2:
        return cfg
    each = budget / folds / 60
    log(f"--budget {budget / 60:.1f} min covers all {folds} folds: {each:.1f} min each")
    return replace(cfg, train=replace(cfg.train, budget_seconds=budget / folds))


def _validation_may_be_slow(cfg: RunConfig, val: list) -> bool:
    """Whether one validation could take over ~10% of an epoch, judged by pixels.

    Only patch training validates on whole images; a pass over them costs about half a
    training step per step's worth of pixels. Below a quarter of an epoch's pixels it is
    not worth timing (a second of tracing on a small dataset).
    """
    if not cfg.data.patch or not val:
        return False
    pixels = sum(s.shape[0] * s.shape[1] for s in val)
    epoch_pixels = (cfg.data.steps_per_epoch or 1) * cfg.train.batch_size * cfg.data.patch**2
    return pixels > 0.25 * epoch_pixels


def _epochs_for_validation(
    cfg: RunConfig,
    timer: Callable[[RunConfig], float],
    validation_timer: Callable[[RunConfig], float],
) -> RunConfig:
    """``cfg`` with its steps in fewer, longer epochs when validation is slow.

    Patch training validates on whole images one by one at every epoch's end: on DSB
    2018, 18 s per pass against 10 s of training per 10-step epoch. A step and one
    validation are timed here; the total number of steps stays about the same.
    """
    per_step, validating = timer(cfg), validation_timer(cfg)
    per_epoch = cfg.data.steps_per_epoch or 1
    epochs, longer = same_steps_epochs(cfg.epochs, per_epoch, per_step, validating)
    if longer == per_epoch:
        return cfg
    why = (
        f"validation takes {validating:.0f} s, {per_epoch} steps {per_epoch * per_step:.0f} s: "
        f"{epochs} epochs x {longer} steps instead of {cfg.epochs} x {per_epoch} (about the "
        f"same steps, validation at most {100 * EPOCH_VALIDATION_SHARE:.0f}% of the time)"
    )
    plan = {**cfg.plan, "reasons": {**cfg.plan["reasons"], "epochs": why}} if cfg.plan else None
    return replace(
        cfg,
        data=replace(cfg.data, steps_per_epoch=longer),
        train=replace(cfg.train, epochs=epochs),
        plan=plan,
    )


def fit_config(
    cfg: RunConfig,
    explicit: Collection[str],
    plan: bool = True,
    run_dir: Path | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    all_folds: bool = False,
) -> RunConfig:
    """The config ``fit`` trains: planned (unless ``plan`` is False), budgeted, or resumed.

    ``explicit`` names the settings the user gave (``"train.batch_size"``); they win
    over the plan and over a resumed run's saved recipe (``fit`` then reports a
    conflict with the saved run in one line). With a budget, the budget decides the
    epochs: an ``--epochs`` given with it is not used (a note says so).
    """
    cfg.validate()
    explicit = set(explicit)
    saved = unfinished_config(run_dir, overwrite, all_folds)
    if all_folds and saved is None:
        cfg = per_fold_budget(cfg, log)
    budget = cfg.train.budget_seconds
    if saved is not None:
        where = "its folds' config.yaml" if all_folds else Path(run_dir) / CONFIG
        log(f"resuming: the recipe is the one saved in {where}")
        resumed = replace(merge(saved, cfg, explicit), plan=saved.plan)
        if all_folds:  # each fold's share of the ensemble's budget, as first divided
            resumed = replace(
                resumed, train=replace(resumed.train, budget_seconds=saved.train.budget_seconds)
            )
        return resumed
    planned = plan and wants_plan(cfg, explicit)
    if not planned and not budget:
        return cfg
    train, val = load_training_data(cfg)
    channels = train[0].channels
    timings: list[StepTiming] = []  # the network that trains is timed last

    validations: list[float] = []

    def timer(planned: RunConfig) -> float:
        timings.append(time_steps(planned, channels))
        return timings[-1].per_step

    def validation_timer(planned: RunConfig) -> float:
        validations.append(time_validation(planned, channels, [s.shape for s in val]))
        return validations[-1]

    if planned:
        fp = fingerprint(train + val, is_time_series(cfg.data), cfg.data.mask_threshold)
        # The plan's budget rule times the network that will train: the plan with yours.
        result = derive_plan(
            fp,
            cfg,
            budget,
            lambda c: timer(merge(c, cfg, explicit)),
            lambda c: validation_timer(merge(c, cfg, explicit)),
        )
        given = explicit & set(RECIPE)
        record = result.to_config().plan or {}
        record.update(reasons=given_reasons(result, given), given=sorted(given))
        cfg = replace(merge(result.config, cfg, explicit), plan=record)
        given_steps = {"train.epochs", "data.steps_per_epoch"} & explicit
        if not budget and not given_steps and _validation_may_be_slow(cfg, val):
            cfg = _epochs_for_validation(cfg, timer, validation_timer)
        log("plan from the data (--no-plan: the fixed defaults; flags you give win):")
        skip = ("epochs",) if budget else ()
        for line in plan_lines(result, given, skip, revised=cfg.plan["reasons"]):
            log(f"  {line}")
    if budget:
        if "train.epochs" in explicit and cfg.train.epochs and not cfg.train.budget_steps:
            log(f"note: --budget decides the epochs; epochs {cfg.train.epochs} is not used")
        if not timings:
            timer(cfg)
        seconds, tracing = timings[-1].per_step, timings[-1].first - timings[-1].per_step
        validating = validations[-1] if validations else validation_timer(cfg)
        per_epoch = steps_per_epoch(len(train), cfg)
        epochs, per_epoch = budget_epochs(budget, seconds, per_epoch, tracing, validating)
        cfg = replace(
            cfg,
            data=replace(cfg.data, steps_per_epoch=per_epoch),
            train=replace(cfg.train, epochs=epochs, budget_steps=epochs * per_epoch),
        )
        why = (
            f"{seconds:.2f} s/step measured here ({tracing:.0f} s to trace, {validating:.0f} s "
            f"per validation): about {epochs} epoch(s) x {per_epoch} steps = "
            f"{epochs * per_epoch} steps; training runs {(1 - VALIDATION_SHARE) * budget / 60:.1f}"
            f" min and the LR follows that time ({100 * VALIDATION_SHARE:.0f}% is kept for the "
            "final scoring)"
        )
        log(f"budget {budget / 60:.1f} min: {why}")
        if cfg.plan is not None:  # the plan's epochs reason is this one, with validation
            cfg = replace(cfg, plan={**cfg.plan, "reasons": {**cfg.plan["reasons"], "epochs": why}})
    return cfg
