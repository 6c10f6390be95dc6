"""Crash-safe writes: every file the tool writes appears whole or not at all.

A file is written under a temporary sibling name and renamed onto its target with
``os.replace``, which is atomic on POSIX file systems; the directory is then fsynced
so the rename survives a power cut. A kill -9, a full disk or a crash while writing
leaves the old file (or none) and a temporary file that the next run removes, never
a truncated file under the real name that a later run would trust.

Temporary names start with ``TMP_PREFIX`` so that they are recognisably ours: only
names with that prefix are ever removed by :func:`remove_stale_temporaries`.

For tests only, ``UNET_TF_SLOW_WRITES=SECONDS`` sleeps after the temporary file is
written and before it is renamed, so a fault-injection test can kill a process
while it is writing a checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".unet-tf-tmp-"
SLOW_WRITES_ENV = "UNET_TF_SLOW_WRITES"


def temporary_sibling(target: Path) -> Path:
    """A name beside ``target`` that keeps its suffixes (``.keras`` and ``.weights.h5``
    writers insist on them) and marks it as ours and as unfinished."""
    return target.parent / f"{TMP_PREFIX}{os.getpid()}-{target.name}"


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync_file(child)
        fsync_dir(path)
    elif path.exists():
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _test_delay() -> None:
    delay = os.environ.get(SLOW_WRITES_ENV)
    if delay:
        time.sleep(float(delay))


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically.

    Works for files and for folders (a SavedModel). On any error, the temporary is
    removed and ``target`` is left as it was. A folder target that already exists is
    swapped out first and removed only after the new one is in place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _fsync_tree(tmp)
        _test_delay()
        if tmp.is_dir() and target.exists():
            old = target.parent / f"{TMP_PREFIX}{os.getpid()}-old-{target.name}"
            _remove(old)
            os.replace(target, old)
            os.replace(tmp, target)
            fsync_dir(target.parent)
            _remove(old)
        else:
            os.replace(tmp, target)
            fsync_dir(target.parent)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: Path | str, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove temporaries that a killed process of ours left in ``folder`` (recursively)."""
    if not folder.is_dir():
        return []
    stale = [p for p in folder.rglob(f"{TMP_PREFIX}*") if p.name.startswith(TMP_PREFIX)]
    for path in sorted(stale, key=lambda p: len(p.parts), reverse=True):
        _remove(path)
    return stale


def _remove(path: Path) -> None:
    """Remove one of our own temporaries; anything else is a programming error."""
    if not path.name.startswith(TMP_PREFIX):
        raise ValueError(f"refusing to remove {path}: not a unet-tf temporary")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
