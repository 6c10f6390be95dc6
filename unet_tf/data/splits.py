"""Deterministic train / validation splits: a seeded hold-out or k-fold, random or blocked.

The validation names end up in ``config.yaml`` (``data.val_names``), so repeating a
run reproduces its split exactly even if files are added to the folder later.

Frames of a time-lapse (CTC) or a video are near copies of their neighbours: a random
80/20 split puts frame 11 in validation and frames 10 and 12 in training, and the
validation score then measures memory, not generalisation. A *blocked* split
(``data.split: blocked``, the default for those layouts) validates on one contiguous
block of frames instead, and leaves ``data.split_gap`` annotated frames on each side of
the block out of training. The gap is applied again when a rerun splits by the
recorded ``val_names``, so the two splits are the same.
"""

from __future__ import annotations

import numpy as np

from unet_tf.config import DataConfig
from unet_tf.data.checks import warn
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some

# The parts of a run's data that ``evaluate --subset`` may score.
SUBSETS = ("val", "train", "all")


def split_samples(samples: list[Sample], cfg: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """Split by recorded names, by fold, or by a fraction, in that order.

    ``samples`` must be in reading order (frames in time order) for a blocked split;
    ``cfg.split`` must be resolved (``random`` or ``blocked``, not ``auto``).
    """
    if cfg.split not in ("random", "blocked"):
        raise ValueError(f"split {cfg.split!r} must be resolved before splitting")
    blocked = cfg.split == "blocked"
    if cfg.val_names:
        return _split_by_names(samples, cfg.val_names, cfg.split_gap if blocked else 0)
    n = len(samples)
    order = np.arange(n) if blocked else np.random.default_rng(cfg.split_seed).permutation(n)
    if cfg.folds:
        if not 2 <= cfg.folds <= n:
            raise UserError(f"--folds {cfg.folds} needs 2 to {n} folds for {n} images")
        if not 0 <= cfg.fold < cfg.folds:
            raise UserError(f"--fold must be 0 to {cfg.folds - 1}, got {cfg.fold}")
        val_idx = np.array_split(order, cfg.folds)[cfg.fold]
    elif cfg.val_split > 0:
        if n < 2:
            raise UserError(
                f"only {n} annotated image: need at least 2 to hold one out for validation; "
                "add images, pass --val DIR, or use --val-split 0"
            )
        n_val = max(1, round(n * cfg.val_split))
        if blocked:
            start = int(np.random.default_rng(cfg.split_seed).integers(0, n - n_val + 1))
            val_idx = order[start : start + n_val]
        else:
            val_idx = order[:n_val]
    else:
        return samples, []
    names = [samples[i].name for i in sorted(val_idx.tolist())]
    return _split_by_names(samples, names, cfg.split_gap if blocked else 0)


def _split_by_names(
    samples: list[Sample], names: list[str], gap: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """Validation = the named samples; training = the rest, minus ``gap`` neighbours each side."""
    wanted = set(names)
    missing = sorted(wanted - {s.name for s in samples})
    if missing:
        raise UserError(
            f"the recorded validation images are not in the data: {list_some(missing)}; "
            "remove data.val_names from the config to draw a new split"
        )
    val_idx = [i for i, s in enumerate(samples) if s.name in wanted]
    for width in range(gap, -1, -1):  # a gap that leaves nothing to train on is narrowed
        near = {j for i in val_idx for j in range(i - width, i + width + 1)}
        train = [s for i, s in enumerate(samples) if i not in near]
        if train:
            if width < gap:
                warn(
                    f"only {len(samples)} annotated frames: the gap between validation and "
                    f"training frames is {width}, not {gap} (--split-gap)"
                )
            return train, [samples[i] for i in val_idx]
    return [], [samples[i] for i in val_idx]
