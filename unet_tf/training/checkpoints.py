"""Crash-safe training state: the resume backup, the saved models and ``history.csv``.

Every file here is written under a temporary name and renamed into place
(``unet_tf.atomic``), so a kill at any moment leaves each one as it was or whole.

At the end of an epoch the callbacks write, in this order: the history row, the best
model (``model.keras``), then the resume backup. The backup commits
the epoch: until it is written, a rerun trains that epoch again, and the history drops
the epoch's row when the rerun starts, so every epoch appears exactly once.

The backup is two slots used in turn, each a folder with the weights (with the
optimizer's state) and the epoch to resume from. Writing one slot never touches the
other, so if the newest slot is damaged (by the disk, or a copy cut short) the run
resumes from the other one, an epoch earlier, instead of failing or starting over.

A full disk must end a run with an error, not a crash: HDF5 segfaults in h5py's close
when the disk fills while it writes a ``.weights.h5``, so those files are written only
after checking that there is room (``.keras`` files are zipped by Python, which raises
``OSError`` instead), and TensorBoard's "no space" error becomes an ``OSError`` too.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.atomic import atomic_path, atomic_write_text
from unet_tf.errors import UserError, first_line
from unet_tf.training.callbacks import BudgetClock

SLOTS = ("slot-0", "slot-1")
WEIGHTS = "state.weights.h5"
# The epoch to resume from, named as Keras' BackupAndRestore names it. Beside the slots,
# the same file records the newest backup for people and scripts that watch a run.
METADATA = "training_metadata.json"
# What Keras' BackupAndRestore left in runs interrupted under older versions.
LEGACY_WEIGHTS = "latest.weights.h5"
# Room a .weights.h5 needs beyond its variables' bytes (HDF5 uses ~1 KiB per variable).
H5_BYTES_PER_VARIABLE = 2048
H5_BYTES_BASE = 1 << 20


@dataclass(frozen=True)
class Restored:
    """Where training resumes: the first epoch to train, and the slot it came from."""

    epoch: int
    slot: str | None  # None for a backup written by an older version
    # A budgeted run's clock at that epoch's end (see callbacks.BudgetClock).
    seconds_trained: float = 0.0
    steps_done: int | None = None


def restore_backup(model: keras.Model, backup_dir: Path) -> Restored | None:
    """Load the newest readable backup in ``backup_dir``; None when there is none.

    A damaged slot is skipped with a one-line warning; if backups exist but none can
    be read, the run cannot resume and must not silently start over, so this raises a
    ``UserError`` that names the folder. Call it in the model's strategy scope, on a model
    from ``compile_model``: that builds the optimizer, whose state is in the weights file.
    """
    candidates = _candidates(backup_dir)
    if not candidates:
        return None
    problems = []
    for i, (weights, metadata) in enumerate(candidates):
        try:
            state = json.loads(metadata.read_text())
            epoch = int(state["epoch"])
            model.load_weights(weights)
        except Exception as exc:  # h5py and Keras raise many kinds for a damaged file
            reason = first_line(exc, 160)
            problems.append(f"{weights.parent.name}: {reason}")
            if i + 1 < len(candidates):
                older = candidates[i + 1][0].parent
                print(
                    f"warning: cannot read the backup in {weights.parent} ({reason}); "
                    f"trying the older one in {older}",
                    file=sys.stderr,
                )
            continue
        slot = weights.parent.name if weights.parent != backup_dir else None
        steps = state.get("steps_done")
        return Restored(
            epoch,
            slot,
            float(state.get("seconds_trained", 0.0)),
            None if steps is None else int(steps),
        )
    raise UserError(
        f"cannot resume the run: no backup in {backup_dir} can be read "
        f"({'; '.join(problems)}); pass --overwrite to start the run over"
    )


def _candidates(backup_dir: Path) -> list[tuple[Path, Path]]:
    """(weights, metadata) of each backup present, newest first, unreadable ones last."""
    slots = [backup_dir / name for name in SLOTS if (backup_dir / name).is_dir()]
    slots.sort(key=lambda slot: _epoch_or_none(slot / METADATA) or 0, reverse=True)
    found = [(slot / WEIGHTS, slot / METADATA) for slot in slots]
    if (backup_dir / LEGACY_WEIGHTS).exists():
        found.append((backup_dir / LEGACY_WEIGHTS, backup_dir / METADATA))
    return found


def _epoch_or_none(metadata: Path) -> int | None:
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_backup(backup_dir: Path) -> None:
    """Drop the resume state of a finished run (call only once metrics.json is written)."""
    if backup_dir.exists():
        shutil.rmtree(backup_dir)


def save_weights(model: keras.Model, path: Path) -> None:
    """``model.save_weights`` to ``path``, first making sure the disk has room for it."""
    needed = weights_file_bytes(model)
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device ({needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free)",
            str(path.parent),
        )
    model.save_weights(path)


def weights_file_bytes(model: keras.Model) -> int:
    """An upper bound on the size of the model's ``.weights.h5`` with its optimizer state."""
    optimizer = model.optimizer.variables if model.optimizer is not None else []
    variables = [*model.weights, *optimizer]
    data = sum(int(np.prod(v.shape)) * _itemsize(str(v.dtype)) for v in variables)
    return H5_BYTES_BASE + data + H5_BYTES_PER_VARIABLE * len(variables)


def _itemsize(dtype: str) -> int:
    """Bytes per element of a Keras dtype name (``float32`` -> 4, ``bfloat16`` -> 2)."""
    bits = re.search(r"\d+", dtype)
    return int(bits.group()) // 8 if bits else 1


@contextlib.contextmanager
def disk_full_as_os_error() -> Iterator[None]:
    """Turn TensorFlow's "no space left" (from TensorBoard's writers) into ``OSError``.

    The CLI reports an ``OSError`` ENOSPC in one line; TensorFlow raises its own
    ``ResourceExhaustedError``, the same type as running out of memory, which stays.
    """
    try:
        yield
    except tf.errors.ResourceExhaustedError as exc:
        message = exc.message or ""
        if "No space left on device" not in message:
            raise
        path = re.search(r"(\S+); No space left on device", message)
        raise OSError(
            errno.ENOSPC, "No space left on device", path.group(1) if path else None
        ) from None


class Backup(keras.callbacks.Callback):
    """Save the resume state at the end of each epoch into the older of two slots.

    With a budget's ``clock``, the state also records the seconds and steps spent, in
    the same atomic write, so a resumed run counts exactly what its epochs took.
    """

    def __init__(
        self, backup_dir: Path, restored: Restored | None = None, clock: BudgetClock | None = None
    ):
        super().__init__()
        self.backup_dir, self.clock = backup_dir, clock
        self.newest = restored.slot if restored else None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        slot = SLOTS[1] if self.newest == SLOTS[0] else SLOTS[0]
        spent = self.clock.state() if self.clock else {}
        state = json.dumps({"epoch": epoch + 1, "slot": slot, **spent})
        with atomic_path(self.backup_dir / slot) as tmp:
            tmp.mkdir()
            save_weights(self.model, tmp / WEIGHTS)
            (tmp / METADATA).write_text(state)
        self.newest = slot
        atomic_write_text(self.backup_dir / METADATA, state)
        # An older version's backup would now hold a stale epoch; the slots replace it.
        (self.backup_dir / LEGACY_WEIGHTS).unlink(missing_ok=True)


class SaveModel(keras.callbacks.Callback):
    """Save the best model (``.keras``) atomically: when ``monitor`` beats every earlier
    score (``best`` carries the best of an interrupted run's finished epochs), or while
    there is no file yet."""

    def __init__(self, path: Path, monitor: str, best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        score = float((logs or {}).get(self.monitor, np.nan))
        improved = np.isfinite(score) and (self.best is None or score > self.best)
        if not improved and self.path.exists():
            return
        if improved:
            self.best = score
        save_model(self.model, self.path)


def save_model(model: keras.Model, path: Path) -> None:
    """Write the model (``.keras``) or its weights (``.weights.h5``) atomically."""
    try:
        with atomic_path(path) as tmp:
            if path.name.endswith(".weights.h5"):
                save_weights(model, tmp)
            else:
                model.save(tmp)
    except OSError as exc:
        if exc.filename is not None:
            raise
        # zipfile's errors (a full disk while writing .keras) do not name the file
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


class HistoryFile(keras.callbacks.Callback):
    """``history.csv``: one row per finished epoch, the file rewritten whole each epoch.

    Epochs are numbered from 1, as the console (``Epoch 1/40``), TensorBoard and
    ``metrics.json``'s ``best_epoch`` number them; ``start`` is the number of epochs
    already finished (Keras' 0-based ``initial_epoch``). Rows after ``start`` are dropped
    when training starts: they belong to epochs an interrupted run finished but did not
    back up, which train again now. Files written before this rule numbered from 0;
    :func:`read_rows` renumbers them, so such a run still resumes.
    Columns are those of Keras' CSVLogger (``epoch``, then the logs sorted by name),
    without its ``NA`` columns for validation scores a run without validation lacks.
    """

    def __init__(self, path: Path, start: int):
        super().__init__()
        self.path, self.start = path, start
        self.rows: list[dict] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.rows = [row for row in read_rows(self.path) if int(row["epoch"]) <= self.start]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values = {k: float(v) for k, v in (logs or {}).items()}
        self.rows.append({"epoch": epoch + 1, **values})
        names = sorted({key for row in self.rows for key in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(text, ["epoch", *names], restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())


def read_rows(path: Path) -> list[dict]:
    """The rows of a ``history.csv``, epochs numbered from 1; none when there is no file yet.

    A file whose first epoch is 0 was written by a version that numbered from 0; its
    epochs are shifted by one so that resuming such a run keeps the right rows.
    """
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("epoch")]
    if rows and int(rows[0]["epoch"]) == 0:
        rows = [{**row, "epoch": str(int(row["epoch"]) + 1)} for row in rows]
    return rows
