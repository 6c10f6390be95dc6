"""Never lose a user's data: --overwrite replaces only what unet-tf made, atomically.

Each case here once deleted or lost a user's files (issue 9): a folder with the
user's notes, the training data, the current directory, a training run exported
over itself, a finished run deleted before its replacement had trained, two fits
writing one run, and results computed and then lost on a read-only disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_FIT as TINY
from conftest import run_cli as run

from unet_tf.atomic import TMP_PREFIX, atomic_path, atomic_write_text
from unet_tf.errors import UserError
from unet_tf.rundir import (
    LOCK,
    METRICS,
    RETIRED_SUFFIX,
    RUN_MARKER,
    STAGING_SUFFIX,
    recover_interrupted_swap,
    remove_ours,
)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content, to prove nothing changed.

    The lock file is left out: it names the last process that held it."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != LOCK
    }


def copy_run(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    return dest


def test_a_run_carries_its_marker(tiny_run):
    _, run_dir = tiny_run
    assert json.loads((run_dir / RUN_MARKER).read_text())["kind"] == "run"


def test_overwrite_refuses_a_folder_the_tool_did_not_make(tiny_run, tmp_path, capsys):
    data, _ = tiny_run
    user = tmp_path / "x"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    code, _, err = run(capsys, "fit", "--data", data, "--run-dir", user, "--overwrite", *TINY)
    assert code == 2 and "not created by unet-tf" in err and str(user) in err
    assert (user / "notes.txt").read_text() == "my notes"


def test_overwrite_refuses_a_run_holding_the_users_files(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    mine = copy_run(run_dir, tmp_path / "run")
    (mine / "notes.txt").write_text("my notes")
    before = tree(mine)
    code, _, err = run(capsys, "fit", "--data", data, "--run-dir", mine, "--overwrite", *TINY)
    assert code == 2 and "notes.txt" in err and "did not write" in err
    assert tree(mine) == before


def test_overwrite_never_replaces_the_training_data(tiny_run, tmp_path, capsys):
    data, _ = tiny_run
    own = shutil.copytree(data, tmp_path / "data")
    (own / RUN_MARKER).write_text("{}")  # even a folder that looks like a run
    before = tree(own)
    code, _, err = run(capsys, "fit", "--data", own, "--run-dir", own, "--overwrite", *TINY)
    assert code == 2 and "holds the data" in err
    assert tree(own) == before


@pytest.mark.parametrize("target", [".", ".."])
def test_overwrite_never_replaces_the_current_directory(tiny_run, tmp_path, capsys, target):
    data, _ = tiny_run
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "thesis.tex").write_text("years of work")
    before = tree(tmp_path)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        code, _, err = run(capsys, "fit", "--data", data, "--run-dir", target, "--overwrite", *TINY)
    finally:
        os.chdir(cwd)
    assert code == 2 and "current directory" in err
    assert tree(tmp_path) == before


def test_export_over_its_own_run_is_refused(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    mine = copy_run(run_dir, tmp_path / "run")
    before = tree(mine)
    code, _, err = run(capsys, "export", mine, "--out", mine, "--overwrite")
    assert code == 2 and "--out" in err
    assert tree(mine) == before


def test_export_over_a_users_folder_is_refused(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "figure.png").write_bytes(b"not ours")
    code, _, err = run(capsys, "export", run_dir, "--out", user, "--overwrite")
    assert code == 2 and "not created by unet-tf" in err
    assert (user / "figure.png").read_bytes() == b"not ours"


def test_export_replaces_its_own_export(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    out = tmp_path / "exported"
    assert run(capsys, "export", run_dir, "--out", out)[0] == 0
    first = (out / "saved_model.pb").stat().st_mtime_ns
    assert run(capsys, "export", run_dir, "--out", out)[0] == 2  # exists, no --overwrite
    assert run(capsys, "export", run_dir, "--out", out, "--overwrite")[0] == 0
    assert (out / "saved_model.pb").stat().st_mtime_ns != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_json_that_is_a_folder_is_refused(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    folder = tmp_path / "scores"
    folder.mkdir()
    code, _, err = run(capsys, "evaluate", run_dir, "--data", data, "--json", folder, "--overwrite")
    assert code == 2 and "is a folder" in err and "Traceback" not in err


def _fit_command(data: Path, run_dir: Path, *extra: str) -> list[str]:
    args = ["fit", "--data", data, "--run-dir", run_dir, *TINY, *extra]
    return [sys.executable, "-m", "unet_tf.cli", *map(str, args)]


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.slow
def test_overwrite_keeps_the_old_run_until_the_new_one_finishes(tiny_run, tmp_path, capsys):
    """Killed in epoch 1 of a replacement: the old run survives, a second fit is locked
    out while the first runs, and the identical rerun resumes and swaps in the new run."""
    data, run_dir = tiny_run
    mine = copy_run(run_dir, tmp_path / "run")
    old = tree(mine)
    staged = mine.parent / f".{mine.name}{STAGING_SUFFIX}"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    command = _fit_command(data, mine, "--overwrite", "--epochs", "2")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(staged / "config.yaml", first)
        code, _, err = run(capsys, *command[3:])  # the same fit, while the first one runs
        assert code == 2 and "in use by unet-tf pid" in err and str(first.pid) in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert tree(mine) == old  # the finished run is untouched by the killed replacement
    code, out, err = run(capsys, *command[3:])  # the identical rerun, in this process
    assert code == 0, err
    assert "resuming" in out
    assert not staged.exists()
    assert (mine / METRICS).read_bytes() != old[METRICS]
    assert json.loads((mine / METRICS).read_text())["validation"] is not None


def test_an_interrupted_swap_is_finished_or_undone(tmp_path):
    def make(folder: Path, finished: bool) -> Path:
        folder.mkdir()
        (folder / RUN_MARKER).write_text("{}")
        (folder / "config.yaml").write_text(folder.name)
        if finished:
            (folder / METRICS).write_text("{}")
        return folder

    run_dir = tmp_path / "run"
    retired = make(tmp_path / f".run{RETIRED_SUFFIX}", finished=True)
    make(tmp_path / f".run{STAGING_SUFFIX}", finished=True)
    recover_interrupted_swap(run_dir)  # killed between the renames: finish the swap
    assert (run_dir / "config.yaml").read_text() == f".run{STAGING_SUFFIX}"
    assert not retired.exists()

    other = tmp_path / "other"
    make(tmp_path / f".other{RETIRED_SUFFIX}", finished=True)
    make(tmp_path / f".other{STAGING_SUFFIX}", finished=False)
    recover_interrupted_swap(other)  # the replacement never finished: undo
    assert (other / "config.yaml").read_text() == f".other{RETIRED_SUFFIX}"


def test_remove_ours_refuses_foreign_folders(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "a.txt").write_text("x")
    with pytest.raises(UserError, match="not a unet-tf run"):
        remove_ours(user, "run")
    assert (user / "a.txt").exists()


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_folder_replacement(tmp_path):
    target = tmp_path / "export"
    for content in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "file").write_text(content)
    assert (target / "file").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


@pytest.fixture
def read_only(tmp_path):
    """A read-only file system (root ignores permission bits, so chmod is not enough)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_read_only_locations_fail_before_any_work(tiny_run, read_only, capsys):
    data, run_dir = tiny_run
    cases = [
        ["fit", "--data", data, "--run-dir", read_only / "run", *TINY],
        ["predict", run_dir, data / "images", "--out", read_only / "pred"],
        ["export", run_dir, "--out", read_only / "exported"],
        ["evaluate", run_dir, "--data", data, "--json", read_only / "scores.json"],
        ["evaluate", run_dir, "--data", data, "--report", read_only / "report"],
    ]
    for args in cases:
        code, out, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert "read-only" in err and "Traceback" not in err, (args, err)
        assert "evaluating" not in out, args  # refused before the scoring, not after
    cwd = os.getcwd()
    os.chdir(read_only)  # the default run directory runs/ under a read-only cwd
    try:
        code, _, err = run(capsys, "fit", "--data", data, *TINY)
    finally:
        os.chdir(cwd)
    assert code == 2 and "runs" in err and "read-only" in err
