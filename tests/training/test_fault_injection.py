"""Fault injection: kill a real ``unet-tf fit`` at its fragile moments, then rerun it.

After every kill the identical command must finish the run: exit 0, a ``model.keras``
that loads, and a ``history.csv`` with every epoch exactly once. The killed commands
run as processes of their own; a rerun that is not killed runs in this process, which
has TensorFlow loaded already (seconds of CPU saved per rerun). Damaged backups fall
back to the older slot or fail in one line; a full disk fails in one line and leaves
nothing that looks like a finished run.

``UNET_TF_SLOW_WRITES`` (``unet_tf.atomic``) holds each write open for a moment under
its temporary name, so that a test can see which file is being written and kill then.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_folder_dataset

from unet_tf.atomic import SLOW_WRITES_ENV, TMP_PREFIX

EPOCHS = 3
FLAGS = ["--size", "64", "--base-filters", "4", "--depth", "2", "--batch-size", "2"]
FLAGS += ["--precision", "float32", "--quiet"]
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
ENV.pop(SLOW_WRITES_ENV, None)
SLOW = "0.5"  # seconds each write waits under its temporary name: time to see it and kill
BACKUP = Path("checkpoints") / "backup"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("fault") / "data", n=6, size=64)


def fit_args(data: Path, run: Path, epochs: int = EPOCHS) -> list[str]:
    return ["fit", "--data", str(data), "--run-dir", str(run), "--epochs", str(epochs)]


def command(args: list[str], extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "unet_tf.cli", *args, *FLAGS, *extra]


def rerun(capsys: pytest.CaptureFixture, args: list[str], *extra: str) -> tuple[int, str, str]:
    """The identical command again, in this process: exit code, stdout, stderr."""
    return run_cli(capsys, *args, *FLAGS, *extra)


def kill_when(
    args: list[str], ready: Callable[[], bool], what: str, *extra: str, slow: bool = False
) -> None:
    """Start ``fit`` and SIGKILL it as soon as ``ready()``; fail if it ends before."""
    env = {**ENV, SLOW_WRITES_ENV: SLOW} if slow else ENV
    proc = subprocess.Popen(
        command(args, extra), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    try:
        while not ready():
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode(errors="replace")
                pytest.fail(f"fit exited ({proc.returncode}) before {what}: {stderr[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"fit did not reach {what} within 240 s")
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"fit finished before it was killed ({what})"


def temporaries(folder: Path, name: str = "") -> list[Path]:
    return [p for p in folder.rglob(f"{TMP_PREFIX}*") if p.name.endswith(name)]


def history_epochs(run: Path) -> list[int]:
    if not (run / "history.csv").exists():
        return []
    with open(run / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def backup_epoch(run: Path) -> int:
    """The epoch the newest complete backup resumes from (0 before the first)."""
    try:
        return json.loads((run / BACKUP / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def load_model(path: Path):
    import keras

    import unet_tf  # noqa: F401 - registers the custom objects

    return keras.saving.load_model(path)


def assert_finished(code: int, err: str, run: Path, epochs: int = EPOCHS) -> None:
    """The rerun (its exit code and stderr) finished the run as if nothing had happened."""
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    assert history_epochs(run) == list(range(1, epochs + 1))  # numbered from 1
    assert load_model(run / "model.keras") is not None
    assert json.loads((run / "metrics.json").read_text())["epochs"] == epochs
    assert not (run / BACKUP).exists()  # removed once metrics.json is written
    assert temporaries(run) == []


@pytest.fixture(scope="module")
def interrupted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run killed in its last epoch, with both backup slots written (copy before use)."""
    run = tmp_path_factory.mktemp("interrupted") / "run"
    kill_when(fit_args(data, run), lambda: backup_epoch(run) >= 2, "the second backup")
    assert (run / BACKUP / "slot-0").is_dir() and (run / BACKUP / "slot-1").is_dir()
    return run


def copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def test_kill_during_an_epoch_then_rerun_resumes(
    interrupted: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    run = copy_run(interrupted, tmp_path)
    code, out, err = rerun(capsys, fit_args(data, run))
    assert "resuming" in out
    assert_finished(code, err, run)


def test_killed_while_writing_the_backup_then_before_metrics(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    """Killed twice: while the second backup is written, then while the resumed run
    writes metrics.json; the next rerun scores the run without training again."""
    run = tmp_path / "run"
    args = fit_args(data, run)
    writing = lambda: bool(temporaries(run / BACKUP, "slot-1"))  # noqa: E731
    kill_when(args, writing, "the second backup write", slow=True)
    assert backup_epoch(run) == 1  # the first backup, whole; the second, never renamed

    scoring = lambda: bool(temporaries(run, "metrics.json"))  # noqa: E731
    kill_when(args, scoring, "the metrics.json write", slow=True)
    assert backup_epoch(run) == EPOCHS  # training had finished
    history = (run / "history.csv").read_bytes()
    trained = trainable_weights(run / "model.keras")
    code, _, err = rerun(capsys, args)
    assert_finished(code, err, run)
    assert (run / "history.csv").read_bytes() == history, "epochs were retrained"
    # the finish may re-estimate BatchNorm's moving statistics again, but trains nothing
    for before, after in zip(trained, trainable_weights(run / "model.keras"), strict=True):
        np.testing.assert_array_equal(before, after)


def test_kill_while_writing_the_last_epochs_model(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    """The tester's case: a kill while the last epoch saved model.keras lost every epoch.

    Without validation images the best model is chosen by training Dice, which rises
    over these three epochs, so the last epoch writes model.keras.
    """
    run = tmp_path / "run"
    args = fit_args(data, run)

    def last() -> bool:
        return len(history_epochs(run)) == EPOCHS and bool(temporaries(run, "model.keras"))

    kill_when(args, last, "the last epoch's model.keras write", "--val-split", "0", slow=True)
    assert load_model(run / "model.keras") is not None  # the previous best, whole
    assert backup_epoch(run) == EPOCHS - 1
    code, _, err = rerun(capsys, args, "--val-split", "0")
    assert_finished(code, err, run)
    with open(run / "history.csv", newline="") as f:
        assert "NA" not in f.read()
    assert json.loads((run / "metrics.json").read_text())["validation"] is None


def trainable_weights(model_file: Path) -> list[np.ndarray]:
    import keras

    import unet_tf  # noqa: F401  (registers the custom objects)

    return [w.numpy() for w in keras.saving.load_model(model_file).trainable_weights]


def test_a_damaged_newest_backup_falls_back_to_the_older_slot(
    interrupted: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    run = copy_run(interrupted, tmp_path)
    newest = json.loads((run / BACKUP / "training_metadata.json").read_text())["slot"]
    (run / BACKUP / newest / "state.weights.h5").write_bytes(b"")
    code, _, err = rerun(capsys, fit_args(data, run))
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot read the backup" in warnings[0], err
    assert_finished(code, err, run)


def test_every_backup_damaged_is_one_line_that_names_the_fix(
    interrupted: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    run = copy_run(interrupted, tmp_path)
    weights = sorted((run / BACKUP).glob("slot-*/state.weights.h5"))
    assert len(weights) == 2
    weights[0].write_bytes(b"")
    weights[1].write_bytes(weights[1].read_bytes()[:1000])  # truncated
    code, _, err = rerun(capsys, fit_args(data, run))
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert str(run / BACKUP) in errors[0] and "--overwrite" in errors[0]
    assert not (run / "metrics.json").exists()


def test_a_full_disk_fails_in_one_line_and_leaves_no_finished_run(data: Path, tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()[:200]}")
    try:
        run = disk / "run"
        # 16 base filters: each model file is ~1.6 MB, so the second one does not fit.
        # Its own process: should HDF5 crash on the full disk, it takes no test worker down.
        result = subprocess.run(
            command(fit_args(data, run, epochs=2), ("--base-filters", "16")),
            env=ENV, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "disk is full" in errors[0], result.stderr
        assert not (run / "metrics.json").exists()
        assert temporaries(run) == []
        if (run / "model.keras").exists():
            assert load_model(run / "model.keras") is not None
    finally:
        subprocess.run(["umount", str(disk)], check=False)
