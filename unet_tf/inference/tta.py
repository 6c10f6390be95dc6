"""Test-time augmentation: average predictions over flips or all 8 symmetries of a square.

Microscopy and fundus images have no preferred orientation, so a network should
answer the same for a flipped or rotated image; averaging over those views removes
part of its orientation-dependent error. Each view is undone before averaging, so
the result is aligned with the input. ``flips`` uses the identity, horizontal,
vertical and both flips (4 passes); ``d4`` adds the four transposed views (8 passes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Forward = Callable[[np.ndarray], np.ndarray]
# (quarter turns, mirror left-right after turning): elements of the dihedral group D4.
VIEWS: dict[str, tuple[tuple[int, bool], ...]] = {
    "none": ((0, False),),
    "flips": ((0, False), (0, True), (2, True), (2, False)),
    "d4": tuple((k, flip) for k in range(4) for flip in (False, True)),
}
TTA_MODES = tuple(VIEWS)


def apply_view(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """Rotate a (B, H, W, C) batch by ``turns`` quarter turns, then mirror it."""
    out = np.rot90(batch, turns, axes=(1, 2))
    return out[:, :, ::-1] if flip else out


def undo_view(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`apply_view`."""
    out = batch[:, :, ::-1] if flip else batch
    return np.rot90(out, -turns, axes=(1, 2))


def with_tta(forward: Forward, mode: str) -> Forward:
    """Wrap ``forward`` so that it returns the mean over the views of ``mode``."""
    if mode not in VIEWS:
        raise ValueError(f"unknown TTA mode {mode!r}; choose one of {TTA_MODES}")
    views = VIEWS[mode]
    if len(views) == 1:
        return forward

    def averaged(batch: np.ndarray) -> np.ndarray:
        total = None
        for turns, flip in views:
            view = np.ascontiguousarray(apply_view(batch, turns, flip))
            out = undo_view(np.asarray(forward(view), np.float32), turns, flip)
            total = out.astype(np.float64) if total is None else total + out
        return (total / len(views)).astype(np.float32)

    return averaged
