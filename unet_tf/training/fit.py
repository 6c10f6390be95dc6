"""``fit``: from a config to a finished run directory.

The run directory holds everything needed to trust and repeat the result:
``config.yaml`` (resolved settings), ``model.keras`` (best by validation Dice),
``checkpoints/`` (resume state and the last weights), ``logs/`` (TensorBoard),
``history.csv`` and ``metrics.json`` (full-resolution validation scores).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from unet_tf.atomic import atomic_path, atomic_write_text, remove_stale_temporaries
from unet_tf.config import AUTO_THRESHOLD_UNTIL_CHOSEN, RunConfig
from unet_tf.data.border_weights import add_border_weights
from unet_tf.data.checks import warn
from unet_tf.data.formats.ctc import validation_config
from unet_tf.data.formats.registry import read_dataset
from unet_tf.data.pipeline import Prepared, make_dataset, prepare, steps_per_epoch
from unet_tf.data.sample import Sample
from unet_tf.data.sequence import frame_likeness
from unet_tf.data.splits import split_samples
from unet_tf.errors import UserError
from unet_tf.evaluation.provenance import write_training_record
from unet_tf.evaluation.scoring import evaluate_samples
from unet_tf.evaluation.threshold import cross_fit_threshold
from unet_tf.evaluation.tuning import chooses_threshold, tune_postprocess
from unet_tf.inference.predictor import Predictor, compiled, remembering
from unet_tf.models import build_model
from unet_tf.models.sm import load_options
from unet_tf.rundir import (
    BACKUP,
    CONFIG,
    HISTORY,
    LAST_WEIGHTS,
    LOGS,
    METRICS,
    MODEL,
    default_run_dir,
    open_run_dir,
    read_history,
)
from unet_tf.runtime.distribute import (
    Distribution,
    check_batch,
    cluster_failures,
    every_replica,
    lr_factor,
    make_distribution,
    replicas_in_sync,
    shard_by_data,
    writable_dir,
)
from unet_tf.runtime.keras_internals import fix_multiworker_fit
from unet_tf.runtime.precision import precision_policy
from unet_tf.runtime.xla import use_xla
from unet_tf.training.batchnorm import recalibrate_batchnorm
from unet_tf.training.callbacks import (
    BUDGET_EPOCHS_CAP,
    VALIDATION_SHARE,
    BudgetClock,
    EpochClock,
    EpochTensorBoard,
    PredictionImages,
    lr_schedule,
    read_clock,
)
from unet_tf.training.checkpoints import (
    Backup,
    HistoryFile,
    Restored,
    SaveModel,
    disk_full_as_os_error,
    read_rows,
    remove_backup,
    restore_backup,
    save_model,
)
from unet_tf.training.losses import get_loss
from unet_tf.training.metrics import training_metrics
from unet_tf.training.phases import Phase, training_phases, unfreeze
from unet_tf.training.resolve import resolve_config, resolve_split


@dataclass
class FitResult:
    run_dir: Path
    metrics: dict
    resumed: bool
    config: RunConfig  # as resolved and saved in the run's config.yaml
    chief: bool = True  # False on multiworker workers, which write nothing to run_dir


def load_training_data(cfg: RunConfig) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples, with U-Net border weights if asked for."""
    train, val = _train_and_val(cfg)
    if cfg.data.border_weights:
        add_border_weights(train + val, cfg.data.mask_threshold)
    return train, val


def _train_and_val(cfg: RunConfig) -> tuple[list[Sample], list[Sample]]:
    """From ``--val``, from CTC ``--val-sequences``, or split off the training data."""
    samples = read_dataset(cfg.data.data, cfg.data)
    if cfg.data.val or cfg.data.val_sequences:
        val_cfg = validation_config(cfg.data) if cfg.data.val_sequences else cfg.data
        val = read_dataset(cfg.data.val or cfg.data.data, val_cfg)
        if val[0].channels != samples[0].channels:
            raise UserError(
                f"validation images have {val[0].channels} channel(s), training images "
                f"{samples[0].channels}; use the same kind of images for both"
            )
        return samples, val
    data = resolve_split(cfg.data)  # blocked for frames of a sequence
    if cfg.data.split == "auto" and data.split == "random" and not data.val_names:
        _warn_if_frames(samples)
    return split_samples(samples, data)


def _warn_if_frames(samples: list[Sample]) -> None:
    """Warn when a plain folder's images look like consecutive frames (a random split leaks)."""
    likeness = frame_likeness(samples)
    if likeness is not None and likeness.frames:
        warn(
            f"the images look like frames of one sequence (median correlation "
            f"{likeness.neighbour:.2f} with the next image, {likeness.distant:.2f} with "
            "distant ones): a random validation split holds near copies of training images and "
            "overstates accuracy; pass --split blocked to validate on a block of frames"
        )


def compile_model(model: keras.Model, cfg: RunConfig, lr: float | None = None) -> None:
    """Compile in the strategy the model was built in, so the optimizer is mirrored too.

    The optimizer's slots are built here, eagerly: a resumed run loads their state from
    its backup, and without a distribution strategy Keras would leave them to the first
    train step, which then creates variables inside ``tf.function`` and so is traced
    twice (seconds of CPU per run, for nothing).
    """
    with model.distribute_strategy.scope():
        model.compile(
            optimizer=keras.optimizers.Adam((lr or cfg.train.lr) * lr_factor(cfg.train.scale_lr)),
            loss=get_loss(cfg.train, cfg.data.target),
            weighted_metrics=training_metrics(target=cfg.data.target),
            jit_compile=use_xla(cfg.train.jit_compile, replicas_in_sync(), model.dtype_policy.name),
        )
        model.optimizer.build(model.trainable_variables)


def fit(
    cfg: RunConfig,
    run_dir: Path | None = None,
    overwrite: bool = False,
    verbose: int = 2,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train a model as ``cfg`` says and write the run directory.

    The stages are separate functions so that each concern has one place:
    ``build_compiled_model`` (architecture, freezing, distribution scope),
    ``train_model`` (the Keras fit loop and its phases) and ``finish_run``
    (reload the best model, score it, write ``metrics.json``).
    """
    cfg.validate()
    # First: the strategy fixes TensorFlow's devices, and multiworker joins the cluster.
    dist = make_distribution(cfg.train.strategy, cfg.train.devices)
    check_batch(cfg.train.batch_size, dist.replicas)
    if run_dir is None and dist.workers > 1:
        raise UserError("multiworker training needs --run-dir on storage that all workers share")
    train, val = load_training_data(cfg)
    cfg = resolve_config(cfg, train, val)
    target = Path(run_dir) if run_dir else default_run_dir()
    keras.utils.set_random_seed(cfg.train.seed)
    with precision_policy(cfg.train.precision):  # restored afterwards, for notebooks
        if not dist.chief:  # workers write nothing to the run; the chief opens and locks it
            resumed = (target / BACKUP).is_dir()
            return _train_and_finish(cfg, dist, target, resumed, train, val, 0, log)
        data_paths = (cfg.data.data, cfg.data.val, cfg.data.masks)
        with open_run_dir(target, cfg, overwrite, data_paths) as run:
            result = _train_and_finish(cfg, dist, run.work, run.resumed, train, val, verbose, log)
            run.publish()
    return replace(result, run_dir=target)


def _train_and_finish(
    cfg: RunConfig,
    dist: Distribution,
    run_dir: Path,
    resumed: bool,
    train: list[Sample],
    val: list[Sample],
    verbose: int,
    log: Callable[[str], None],
) -> FitResult:
    """Build, train and score into ``run_dir`` (the run, or its staged replacement)."""
    train_items = prepare(train, cfg, cfg.resize_to)
    val_items = prepare(val, cfg, cfg.resize_to) if val else []

    with dist.strategy.scope():
        model = build_compiled_model(cfg)
    if dist.chief:
        cfg.save(run_dir / CONFIG)
        write_training_record(run_dir, train, val)  # what evaluate checks its images against
    log(
        f"{'resuming' if resumed else 'training'} {model.name} ({model.count_params():,} "
        f"parameters) on {len(train)} image(s), validating on {len(val)}; "
        f"target {cfg.data.target} ({cfg.model.num_classes} output channel(s)); "
        f"precision {cfg.train.precision}; {dist.describe()}; run directory {run_dir}"
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    with writable_dir(run_dir, dist, BACKUP) as out_dir, cluster_failures(dist):
        budget = train_model(
            model, cfg, out_dir, train_items, val_items, verbose if dist.chief else 0
        )
    history = read_history(run_dir / HISTORY)  # counts a resumed run's earlier sessions
    wall = max(time.perf_counter() - started, column_max(history.get("seconds")) or 0.0)
    cpu = max(time.process_time() - cpu_started, column_max(history.get("cpu_seconds")) or 0.0)
    timing = {
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
        **dist.summary(),
        "jit_compile": bool(model.jit_compile),
        **budget,
    }
    if dist.chief:
        cfg, metrics = finish_run(cfg, run_dir, val, timing, train_items)
    else:
        metrics = {"validation": None, **timing}
    with cluster_failures(dist):
        dist.barrier()  # workers stay in the cluster until the chief has written the run
    return FitResult(run_dir, metrics, resumed, cfg, chief=dist.chief)


def build_compiled_model(cfg: RunConfig) -> keras.Model:
    """The network for ``cfg``, compiled with its loss, metrics and optimizer."""
    model = build_model(cfg.model, cfg.input_size)
    compile_model(model, cfg)
    return model


def train_model(
    model: keras.Model,
    cfg: RunConfig,
    run_dir: Path,
    train_items: list[Prepared],
    val_items: list[Prepared],
    verbose: int,
) -> dict:
    """Run the Keras fit loop with the run's callbacks, once per phase.

    With ``--freeze-epochs K`` the encoder trains frozen for K epochs, then every
    layer is unfrozen and the model recompiled at the fine-tuning LR (see
    ``unet_tf.training.phases``, which also explains resuming across the two phases).
    Each phase resumes from its own backup (``unet_tf.training.checkpoints``); a phase that
    an interrupted run finished is skipped after restoring its final state.

    With ``--budget`` one :class:`BudgetClock` spans the phases and stops training when
    the budget's training share is spent: the last phase may run past the planned epochs
    (up to ``BUDGET_EPOCHS_CAP`` times them) when the steps are faster than the timing
    said. A resumed run whose budget is already spent trains nothing more. Returns the
    budget's record for metrics.json ({} without one).
    """
    remove_stale_temporaries(run_dir)  # what a killed run was writing
    train_ds = shard_by_data(make_dataset(train_items, cfg, training=True))
    val_ds, val_steps = None, None
    if val_items:
        val_ds, val_steps = every_replica(
            model.distribute_strategy, lambda: make_dataset(val_items, cfg, training=False)
        )
    epochs = cfg.epochs
    per_epoch = steps_per_epoch(len(train_items), cfg)
    clock = budget_clock(cfg, run_dir)
    phases = training_phases(cfg)
    if clock is not None:  # the clock, not the planned epochs, ends a budgeted run
        phases[-1] = replace(phases[-1], end=max(phases[-1].end, epochs * BUDGET_EPOCHS_CAP))
    fix_multiworker_fit(model)
    with disk_full_as_os_error():
        for phase in phases:
            if phase.unfreeze:
                unfreeze(model)
                compile_model(model, cfg, lr=phase.lr)
            # In the strategy's scope: restoring builds the optimizer's variables, and the
            # LR schedule scales by its replica count.
            with model.distribute_strategy.scope():
                restored = restore_backup(model, phase.backup_dir(run_dir / BACKUP))
                if clock and restored:
                    clock.resume(restored.seconds_trained, _steps_done(restored, per_epoch))
                start = restored.epoch if restored else phase.start
                if start >= phase.end:
                    continue
                if clock and clock.spent() >= clock.limit and (run_dir / MODEL).exists():
                    break  # spent (by an earlier phase, or before a kill): finish the run
                model.fit(
                    train_ds,
                    validation_data=val_ds,
                    validation_steps=val_steps,
                    initial_epoch=start,
                    epochs=phase.end,
                    steps_per_epoch=per_epoch,
                    callbacks=make_callbacks(
                        run_dir, cfg, epochs, val_items, phase, restored, clock
                    ),
                    verbose=verbose,
                    shuffle=False,  # the dataset shuffles itself
                )
        # Once, not at every epoch: until training ends the backup holds these weights.
        save_model(model, run_dir / LAST_WEIGHTS)
    if clock is None:
        return {}
    return {
        "budget_seconds": cfg.train.budget_seconds,
        "steps_planned": cfg.train.budget_steps or epochs * per_epoch,  # the estimate
        "steps_done": clock.steps,
        "seconds_trained": round(clock.spent(), 1),
    }


def budget_clock(cfg: RunConfig, run_dir: Path) -> BudgetClock | None:
    """The clock of a ``--budget`` run, counting the seconds a killed run already spent.

    Training may use the budget less the share kept for validation and the final
    scoring (``VALIDATION_SHARE``); the clock file lives with the resume state.
    """
    if not cfg.train.budget_seconds:
        return None
    path = run_dir / BACKUP / "clock.json"
    limit = cfg.train.budget_seconds * (1 - VALIDATION_SHARE)
    return BudgetClock(limit, path, seconds=read_clock(path))


def _steps_done(restored: Restored, per_epoch: int) -> int:
    """Optimizer steps a resumed run had done (whole epochs for backups without a clock)."""
    return restored.epoch * per_epoch if restored.steps_done is None else restored.steps_done


def finish_run(
    cfg: RunConfig,
    run_dir: Path,
    val: list[Sample],
    timing: dict,
    train_items: list[Prepared],
) -> tuple[RunConfig, dict]:
    """Score the best model on the validation images at full size; write metrics.json.

    First the best model's BatchNorm statistics are re-estimated from training batches
    (``unet_tf.training.batchnorm``: a short run's moving averages still hold much of
    their initial values) and the model is saved again without its optimizer: training
    resumes from the backups in ``checkpoints/``, never from ``model.keras``, and Adam's
    state would triple the file a user keeps, shares and exports.

    Returns the final config (with the chosen threshold under ``--threshold auto``)
    and the metrics.

    The resume state is removed only after metrics.json is written: until then a
    rerun restores the last epoch, trains nothing more and comes straight here.
    """
    best = keras.saving.load_model(
        run_dir / MODEL, compile=False, **load_options(cfg.model.backbone)
    )
    recalibrate_batchnorm(best, make_dataset(train_items, cfg, training=True))
    with atomic_path(run_dir / MODEL) as tmp:
        best.save(tmp)
    network = remembering(compiled(best))  # the scores and the tuning predict once
    cfg, validation = score_validation(network, cfg, val, run_dir)
    metrics = {
        **validation,
        "epochs": trained_epochs(run_dir / HISTORY) or cfg.epochs,  # a budget's clock decides
        **timing,
        "best_epoch": best_epoch(run_dir / HISTORY, "val_dice" if val else "dice"),
    }
    cfg, metrics = tune_postprocess(Predictor(network, cfg), val, metrics, run_dir / CONFIG)
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=2))
    remove_backup(run_dir / BACKUP)
    return cfg, metrics


def score_validation(
    model: keras.Model | Callable[[np.ndarray], np.ndarray],
    cfg: RunConfig,
    val: list[Sample],
    run_dir: Path,
) -> tuple[RunConfig, dict]:
    """metrics.json's validation scores, each labelled with its threshold; the final config.

    With a fixed threshold, ``validation`` is scored at it. Under ``--threshold auto``
    (binary masks), ``validation`` is scored at 0.5, the threshold chosen on all
    validation images is saved into ``config.yaml``, and
    ``validation_at_chosen_threshold`` is the cross-fitted score (each half of the
    images scored at the threshold chosen on the other half, see
    ``unet_tf.evaluation.threshold``): choosing and scoring on the same images would
    report a score no new image can be expected to reach.
    """
    auto = cfg.train.threshold == "auto"
    later = chooses_threshold(cfg.data.target, cfg.train.threshold) and val  # tune_postprocess
    if auto and not later and (cfg.model.num_classes != 1 or not val):  # nothing to choose
        cfg = replace(cfg, train=replace(cfg.train, threshold=AUTO_THRESHOLD_UNTIL_CHOSEN))
        cfg.save(run_dir / CONFIG)
    predictor = Predictor(model, cfg)
    if not val:
        return cfg, {"validation": None, "threshold": predictor.threshold}
    if cfg.train.threshold != "auto" or later:
        scores = evaluate_samples(predictor, val, cfg)
        return cfg, {
            "validation": scores.summary(),
            "validation_threshold": predictor.threshold,
            "threshold": predictor.threshold,
        }
    choice = cross_fit_threshold(predictor, val, cfg)
    cfg = replace(cfg, train=replace(cfg.train, threshold=choice.threshold))
    cfg.save(run_dir / CONFIG)
    crossed = choice.cross_fitted
    return cfg, {
        "validation": choice.at_half.summary(),
        "validation_threshold": predictor.threshold,
        "validation_at_chosen_threshold": crossed.summary() if crossed else None,
        "threshold": choice.threshold,
        "threshold_choice": {
            "method": "Dice-optimal on all validation images; scored cross-fitted on halves",
            "half_thresholds": list(choice.half_thresholds) if choice.half_thresholds else None,
        },
    }


def make_callbacks(
    run_dir: Path,
    cfg: RunConfig,
    epochs: int,
    val_items: list,
    phase: Phase | None = None,
    restored: Restored | None = None,
    clock: BudgetClock | None = None,
) -> list:
    """The run's callbacks, in the order their files must be written at an epoch's end.

    The LR schedule first (it logs ``learning_rate``), then a budget's clock (it logs
    ``budget_spent``), the epoch clock (it logs ``seconds``), the history row, the models,
    and last the backup that commits the epoch (see ``unet_tf.training.checkpoints``),
    which records the clock.
    """
    monitor = "val_dice" if val_items else "dice"
    phase = phase or training_phases(cfg)[-1]
    start = restored.epoch if restored else phase.start
    callbacks: list = []
    schedule = lr_schedule(phase.train_config(cfg.train), epochs, cfg.data.steps_per_epoch, clock)
    if schedule is not None:
        callbacks.append(schedule)
    if clock is not None:
        callbacks.append(clock)
    earlier = [row for row in read_rows(run_dir / HISTORY) if int(row["epoch"]) <= start]
    last = earlier[-1] if earlier else {}
    callbacks += [
        EpochClock(float(last.get("seconds") or 0.0), float(last.get("cpu_seconds") or 0.0)),
        HistoryFile(run_dir / HISTORY, start),
        SaveModel(run_dir / MODEL, monitor, previous_best(run_dir / HISTORY, monitor, start)),
        Backup(phase.backup_dir(run_dir / BACKUP), restored, clock),
        EpochTensorBoard(log_dir=str(run_dir / LOGS), write_graph=False),
    ]
    shown = [v for v in val_items[:3] if v.image.shape == val_items[0].image.shape]
    if shown:
        callbacks.append(
            PredictionImages(
                run_dir / LOGS,
                np.stack([v.image for v in shown]),
                np.stack([v.target for v in shown]),
            )
        )
    return callbacks


def previous_best(history: Path, column: str, before: int) -> float | None:
    """Best score of the epochs an interrupted run finished before Keras' 0-based epoch
    ``before`` (epochs 1..before in history.csv, which are not trained again), so that a
    resumed run does not replace the best model with a worse one."""
    values = read_history(history).get(column)
    if values is None:
        return None
    epochs = history_epochs(history)
    return column_max(values[epochs <= before] if len(epochs) == len(values) else values)


def column_max(values: np.ndarray | None) -> float | None:
    """The largest number in a history column; None when it has none (never logged, NA)."""
    if values is None or not np.isfinite(values).any():
        return None
    return float(np.nanmax(values))


def best_epoch(history: Path, column: str) -> int | None:
    """The epoch (numbered from 1, as everywhere) with the best score, for metrics.json."""
    values = read_history(history).get(column)
    if values is None:
        return None
    epochs = history_epochs(history)
    best = int(np.nanargmax(values))
    return int(epochs[best]) if len(epochs) == len(values) else best + 1


def trained_epochs(history: Path) -> int | None:
    """The last epoch ``history.csv`` records (numbered from 1), None before the first."""
    epochs = history_epochs(history)
    return int(epochs.max()) if len(epochs) else None


def history_epochs(history: Path) -> np.ndarray:
    """The epoch column of ``history.csv``, numbered from 1 (older 0-based files shifted)."""
    return np.array([int(row["epoch"]) for row in read_rows(history)], np.int64)
