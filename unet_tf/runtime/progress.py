"""Progress bars for long work: many images, the tiles of a large image, video frames.

A 10k x 10k image takes minutes to tile; without a bar it looks hung. Bars go to
stderr, so the results printed on stdout stay clean for scripts. The library stays
silent by default (a notebook or a pipeline calling it should not get bars it did
not ask for); the command line switches them on with :func:`set_enabled`, unless
``--quiet`` is given, stderr is not a terminal (a log file, a pipe) or ``CI`` is set
(:func:`wanted`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")

_state = {"enabled": False}


def wanted(quiet: bool = False, stream: IO | None = None) -> bool:
    """Whether a command should show bars: not ``--quiet``, an interactive stderr, no ``CI``."""
    stream = sys.stderr if stream is None else stream
    if quiet or os.environ.get("CI"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def set_enabled(on: bool) -> None:
    """Switch bars on or off for this process (the command line decides, with :func:`wanted`)."""
    _state["enabled"] = bool(on)


def enabled() -> bool:
    return _state["enabled"]


def progress(
    items: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "image",
    file: IO | None = None,
    leave: bool = True,
) -> Iterator[T]:
    """``items`` with a bar (count, rate, ETA) on stderr when enabled; unchanged otherwise.

    ``file`` sends the bar elsewhere than stderr; ``leave=False`` clears an inner bar,
    such as the tiles of one image, when it ends.
    """
    if not enabled():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr if file is None else file,
        leave=leave,
        dynamic_ncols=True,
    ) as bar:
        yield from bar
