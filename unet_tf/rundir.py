"""Run directories: create, refuse to clobber, or resume an interrupted run.

A run directory is finished once ``metrics.json`` exists. Re-running the same
command on an unfinished one resumes it (Keras BackupAndRestore); a finished one
is only replaced with ``--overwrite``.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from unet_tf.config import RunConfig
from unet_tf.errors import UserError

CONFIG = "config.yaml"
MODEL = "model.keras"
METRICS = "metrics.json"
HISTORY = "history.csv"
BACKUP = "checkpoints/backup"  # BackupAndRestore's state of an interrupted run
# Settings that a run resolves itself, so a new request leaving them open still matches.
RESOLVED = {
    ("version",),
    ("model", "in_channels"),
    ("model", "encoder_weights_md5"),
    ("data", "val_names"),
    # Hardware layout: a run may resume on other devices or with XLA switched.
    ("train", "strategy"),
    ("train", "devices"),
    ("train", "jit_compile"),
}


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def open_run_dir(run_dir: Path, cfg: RunConfig, overwrite: bool) -> bool:
    """Make ``run_dir`` ready for ``cfg``; return True when resuming an unfinished run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir} is a file; choose a folder name")
    if run_dir.exists() and any(run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif (run_dir / METRICS).exists():
            raise UserError(
                f"{run_dir} already holds a finished run; pass --overwrite to replace it "
                "or choose another --run-dir"
            )
        elif (run_dir / CONFIG).exists():
            differences = config_differences(RunConfig.load(run_dir / CONFIG), cfg)
            if differences:
                raise UserError(
                    f"{run_dir} holds an unfinished run with other settings "
                    f"({'; '.join(differences[:3])}); rerun with the same settings to resume, "
                    "pass --overwrite to start over, or choose another --run-dir"
                )
            return True
        else:
            raise UserError(
                f"{run_dir} exists and is not a unet-tf run; choose an empty or new --run-dir"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    return False


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
    if path in RESOLVED or requested is None or requested == "auto" or saved == requested:
        return
    out.append(f"{'.'.join(path)}: {saved!r} saved, {requested!r} requested")


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Columns of a Keras CSVLogger file as float arrays ({} when there is none yet)."""
    if not path.exists():
        return {}
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r]
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k}
