"""Run directories: create, refuse to clobber, lock, resume, or replace one safely.

A run directory is finished once ``metrics.json`` exists. Re-running the same
command on an unfinished one resumes it; a finished one is only replaced with
``--overwrite``.

Three rules keep a user's files safe:

- **Only what is ours is replaced.** Folders the tool creates carry a marker file
  (``.unet-tf-run`` or ``.unet-tf-export``). ``--overwrite`` replaces a folder only if
  it has that marker and holds nothing the tool did not write, and never the current
  directory, one of its parents, or a folder that holds the training data.
- **The old run lives until the new one is finished.** ``--overwrite`` trains the new
  run in a staging folder beside the old one and swaps it in at the end; a kill at
  any point leaves the old run intact, and rerunning resumes the staged run.
- **One writer per run.** An advisory ``fcntl`` lock on the run directory makes a
  second ``fit`` into a running run fail with a line that names the other process.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf import __version__
from unet_tf.atomic import TMP_PREFIX, atomic_write_text, fsync_dir, remove_stale_temporaries
from unet_tf.config import RunConfig
from unet_tf.errors import UserError, list_some

CONFIG = "config.yaml"
MODEL = "model.keras"
METRICS = "metrics.json"
HISTORY = "history.csv"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
BACKUP = f"{CHECKPOINTS}/backup"  # the resume state of an interrupted run
LAST_WEIGHTS = f"{CHECKPOINTS}/last.weights.h5"  # the final weights, once training ends
RUN_MARKER = ".unet-tf-run"
EXPORT_MARKER = ".unet-tf-export"
LOCK = ".unet-tf.lock"
STAGING_SUFFIX = ".unet-tf-new"  # beside the run: the replacement being trained
RETIRED_SUFFIX = ".unet-tf-old"  # beside the run: the old run during the swap
# What a run directory may hold; anything else is the user's and blocks --overwrite.
TRAINING_DATA = "data.json"  # content hashes of the images the run trained on
RUN_ENTRIES = frozenset(
    {CONFIG, MODEL, METRICS, HISTORY, CHECKPOINTS, LOGS, RUN_MARKER, LOCK, TRAINING_DATA}
)
# What a SavedModel export folder may hold (Keras's ExportArchive plus our config).
EXPORT_ENTRIES = frozenset(
    {"saved_model.pb", "variables", "assets", "fingerprint.pb", "unet_tf.yaml", EXPORT_MARKER}
)
# A fold ensemble (`fit --all-folds`): one run directory per fold and the ensemble's record.
ENSEMBLE = "ensemble.json"
ENSEMBLE_MARKER = ".unet-tf-ensemble"
FOLD = re.compile(r"^fold_\d+$")
ENSEMBLE_ENTRIES = frozenset({ENSEMBLE, ENSEMBLE_MARKER, LOCK})
# A hyper-parameter search (`unet-tf tune`): KerasTuner's state, the trials' runs, results.
SEARCH_MARKER = ".unet-tf-search"
SEARCH_ENTRIES = frozenset(
    {"search", "trials", "trials.csv", "tune.png", "best.yaml", SEARCH_MARKER, LOCK}
)
MARKERS = {
    "run": (RUN_MARKER, RUN_ENTRIES),
    "export": (EXPORT_MARKER, EXPORT_ENTRIES),
    "ensemble": (ENSEMBLE_MARKER, ENSEMBLE_ENTRIES),
    "search": (SEARCH_MARKER, SEARCH_ENTRIES),
}
# Settings that a run resolves itself, so a new request leaving them open still matches.
RESOLVED = {
    ("version",),
    ("model", "in_channels"),
    ("model", "encoder_weights_md5"),
    ("data", "val_names"),
    ("data", "split"),  # auto resolves to random or blocked
    # Hardware layout: a run may resume on other devices or with XLA switched.
    ("train", "strategy"),
    ("train", "devices"),
    ("train", "jit_compile"),
}


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` as created by unet-tf, so ``--overwrite`` may replace it later."""
    marker = MARKERS[kind][0]
    info = {"kind": kind, "version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(folder / marker, json.dumps(info) + "\n")


def is_ours(folder: Path, kind: str) -> bool:
    """A folder unet-tf made (marker, or a run from before markers existed)."""
    marker = MARKERS[kind][0]
    if (folder / marker).is_file():
        return True
    # Runs written before markers existed: a config and nothing but run entries.
    return kind == "run" and (folder / CONFIG).is_file() and not foreign_entries(folder, kind)


def foreign_entries(folder: Path, kind: str) -> list[str]:
    """Names in ``folder`` that unet-tf does not write there."""
    _, entries = MARKERS[kind]
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in entries
        and not p.name.startswith(TMP_PREFIX)
        and not (kind == "ensemble" and FOLD.match(p.name))
    )


def check_replaceable(
    target: Path, kind: str, option: str, protected: Iterable[Path | str | None] = ()
) -> None:
    """Raise unless ``--overwrite`` may replace ``target`` (a folder the tool made).

    ``protected`` are paths that must survive (the training and validation data):
    ``target`` may be neither one of them nor a folder that contains one.
    """
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise UserError(
            f"{option} {target} is the current directory or one of its parents; "
            f"--overwrite never replaces it: choose a new {option} folder"
        )
    for path in protected:
        if path is None:
            continue
        data = Path(path).resolve()
        if data == resolved or resolved in data.parents:
            raise UserError(
                f"{option} {target} holds the data {path}; --overwrite never replaces it: "
                f"choose another {option}"
            )
    if not target.is_dir():
        return
    if not is_ours(target, kind):
        raise UserError(
            f"{option} {target} was not created by unet-tf (no {MARKERS[kind][0]} file), so "
            f"--overwrite will not replace it; choose a new {option} folder"
        )
    foreign = foreign_entries(target, kind)
    if foreign:
        raise UserError(
            f"{option} {target} holds files unet-tf did not write ({list_some(foreign)}); "
            f"move them out or choose another {option}, then pass --overwrite again"
        )


def remove_ours(folder: Path, kind: str) -> None:
    """Delete a folder only after checking that it is one of ours with nothing foreign."""
    if not folder.exists():
        return
    if not is_ours(folder, kind) or foreign_entries(folder, kind):
        raise UserError(f"{folder} is not a unet-tf {kind} folder; it was left in place")
    shutil.rmtree(folder)


def check_writable(folder: Path, option: str) -> None:
    """Fail now, in one line, if results could not be written to ``folder`` later."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"{option} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"{option} {folder}: cannot write in {existing} (permission denied or read-only); "
            f"choose a writable {option}"
        )


def check_new_outputs(
    paths: Iterable[Path], option: str, overwrite: bool, holds: str | None = None
) -> None:
    """The one guard for output files: each may be created, or replaced with
    ``--overwrite``; a folder standing where a file would go is never replaced, and the
    folders must be writable, so nothing is computed only to be lost. ``holds`` names
    what the files make up together (e.g. "a report"), for the message."""
    paths = [Path(p) for p in paths]
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise UserError(f"{option} {folders[0]} is a folder; name a file to write there instead")
    taken = [p for p in paths if p.exists()]
    if taken and not overwrite:
        names = list_some([p.name for p in taken])
        if holds:
            what = f"{taken[0].parent} already holds {holds} ({names})"
        elif len(taken) == 1:
            what = f"{taken[0]} already exists"
        else:
            what = f"{len(taken)} output files already exist in {taken[0].parent}: {names}"
        raise UserError(f"{what}; pass --overwrite or choose another {option}")
    for folder in sorted({p.parent for p in paths}):
        check_writable(folder, option)


@dataclass
class OpenRun:
    """Where a ``fit`` writes (``work``) and where its result ends up (``target``)."""

    target: Path
    work: Path
    resumed: bool

    @property
    def staged(self) -> bool:
        return self.work != self.target

    def publish(self) -> None:
        """Swap a staged replacement into place; the old run is removed only then."""
        if not self.staged:
            return
        retired = _sibling(self.target, RETIRED_SUFFIX)
        os.replace(self.target, retired)
        os.replace(self.work, self.target)
        fsync_dir(self.target.parent)
        self.work = self.target
        remove_ours(retired, "run")


def _sibling(run_dir: Path, suffix: str) -> Path:
    return run_dir.parent / f".{run_dir.name}{suffix}"


def recover_interrupted_swap(run_dir: Path) -> None:
    """Finish (or undo) a swap that a kill interrupted between its two renames."""
    retired, staged = _sibling(run_dir, RETIRED_SUFFIX), _sibling(run_dir, STAGING_SUFFIX)
    if not retired.is_dir():
        return
    if not run_dir.exists():
        finished = staged.is_dir() and (staged / METRICS).is_file()
        os.replace(staged if finished else retired, run_dir)
        fsync_dir(run_dir.parent)
    if retired.is_dir() and run_dir.is_dir():
        remove_ours(retired, "run")


@contextlib.contextmanager
def open_run_dir(
    run_dir: Path, cfg: RunConfig, overwrite: bool, data: Iterable[Path | str | None] = ()
) -> Iterator[OpenRun]:
    """Make ``run_dir`` ready for ``cfg``, locked for this process while the block runs.

    Yields where to write: ``run_dir`` itself (new, or resuming an unfinished run with
    the same settings), or, under ``--overwrite`` of an existing run, a staging folder
    that :meth:`OpenRun.publish` swaps in when the new run is finished.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir} is a file; choose a folder name")
    check_writable(run_dir, "--run-dir")
    recover_interrupted_swap(run_dir)
    data = list(data)
    if overwrite:
        check_replaceable(run_dir, "run", "--run-dir", data)
    if not run_dir.exists() or not any(run_dir.iterdir()):
        run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(run_dir):
            write_marker(run_dir, "run")
            yield OpenRun(run_dir, run_dir, resumed=False)
        return
    if not is_ours(run_dir, "run"):
        raise UserError(
            f"{run_dir} exists and is not a unet-tf run; choose an empty or new --run-dir"
        )
    with run_lock(run_dir):
        remove_stale_temporaries(run_dir)  # left by a killed run; we hold the lock now
        if overwrite:
            staged = _sibling(run_dir, STAGING_SUFFIX)
            resumed = staged.is_dir() and _resumable(staged, cfg)
            if not resumed:
                remove_ours(staged, "run")
                staged.mkdir()
                write_marker(staged, "run")
            remove_stale_temporaries(staged)
            yield OpenRun(run_dir, staged, resumed)
            return
        if (run_dir / METRICS).exists():
            raise UserError(
                f"{run_dir} already holds a finished run; pass --overwrite to replace it "
                "or choose another --run-dir"
            )
        if (run_dir / CONFIG).exists():
            differences = config_differences(RunConfig.load(run_dir / CONFIG), cfg)
            if differences:
                raise UserError(
                    f"{run_dir} holds an unfinished run with other settings "
                    f"({'; '.join(differences[:3])}); rerun with the same settings to resume, "
                    "pass --overwrite to start over, or choose another --run-dir"
                )
        write_marker(run_dir, "run")
        yield OpenRun(run_dir, run_dir, resumed=(run_dir / CONFIG).exists())


def _resumable(staged: Path, cfg: RunConfig) -> bool:
    """A staged replacement from an interrupted ``--overwrite`` with the same settings."""
    if not is_ours(staged, "run") or (staged / METRICS).exists():
        return False
    if not (staged / CONFIG).exists():
        return False
    return not config_differences(RunConfig.load(staged / CONFIG), cfg)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``run_dir``; the OS drops it if we die."""
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UserError(
                f"{run_dir} is in use by {holder}; wait for it to finish "
                "or choose another --run-dir"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(
            fd, f"unet-tf pid {os.getpid()} on {socket.gethostname()} since {started}".encode(), 0
        )
        yield
    finally:
        os.close(fd)  # closing releases the lock


def config_differences(saved: RunConfig, requested: RunConfig) -> list[str]:
    """Settings that differ, ignoring those the request leaves to be resolved."""
    out: list[str] = []
    _diff(saved.to_dict(), requested.to_dict(), (), out)
    return out


def _diff(saved: Any, requested: Any, path: tuple[str, ...], out: list[str]) -> None:
    if isinstance(requested, dict):
        for key, value in requested.items():
            _diff(saved.get(key) if isinstance(saved, dict) else None, value, (*path, key), out)
        return
    # "auto" on either side is a setting left to be resolved, not a conflicting choice.
    if path in RESOLVED or requested is None or "auto" in (requested, saved) or saved == requested:
        return
    out.append(f"{'.'.join(path)}: {saved!r} saved, {requested!r} requested")


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Columns of a run's history.csv as float arrays ({} when there is none yet).

    A value that is not a number reads as NaN: Keras' CSVLogger, which wrote the file
    before, put ``NA`` in validation columns of runs without validation images. A column
    without any number is left out, as if the run had not logged it.
    """
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r]
    if not rows:
        return {}

    def number(text: str | None) -> float:
        try:
            return float(text) if text else np.nan
        except ValueError:
            return np.nan

    columns = {k: np.array([number(r.get(k)) for r in rows]) for k in rows[0] if k}
    return {k: v for k, v in columns.items() if not np.isnan(v).all()}
