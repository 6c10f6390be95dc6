"""Reading many files at once and reporting every bad one, not just the first.

A user fixing a dataset wants the whole list in one go: "3 of 40 files cannot be
used: a.tif, b.tif, c.gif" beats three rounds of fix-and-rerun. Each loader still
raises its own precise :class:`UserError`; this module gathers them.

Input that can be used but is probably not what the user meant (every mask empty,
NaN pixels patched over) is reported with :func:`warn` instead: a Python warning of
category :class:`DataWarning`, so library users can filter or escalate it and the
CLI prints it as one ``warning:`` line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from unet_tf.errors import UserError, list_some

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")


class DataWarning(UserWarning):
    """Data that runs but would silently give a useless model or prediction."""


def warn(message: str) -> None:
    """Warn about the data, attributed to the caller (so repeats from one place show once)."""
    warnings.warn(message, DataWarning, stacklevel=2)


def load_all(
    items: Sequence[Item], load: Callable[[Item], Loaded], name: Callable[[Item], str]
) -> list[Loaded]:
    """Apply ``load`` to every item; raise one error naming every item that failed.

    With a single failure its own message is raised unchanged; with several, the
    message lists the failing items (a few, then a count) and quotes the first reason.
    """
    loaded, failed, reasons = [], [], []
    for item in items:
        try:
            loaded.append(load(item))
        except UserError as exc:
            failed.append(name(item))
            reasons.append(str(exc))
    if len(failed) == 1:
        raise UserError(reasons[0])
    if failed:
        raise UserError(
            f"{len(failed)} of {len(items)} files cannot be used: {list_some(failed)}; "
            f"the first: {reasons[0]}"
        )
    return loaded


def size_mismatch(kind: str, path: object, shape: tuple, image_name: str, image_shape: tuple):
    """The error for a mask (or FOV mask) whose size differs from its image."""
    return UserError(
        f"{kind} {path} is {shape[1]}x{shape[0]} but its image {image_name} is "
        f"{image_shape[1]}x{image_shape[0]}; masks must match their images pixel for pixel"
    )
