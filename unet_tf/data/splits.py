"""Deterministic train / validation splits: a seeded hold-out or k-fold.

The validation names end up in ``config.yaml`` (``data.val_names``), so repeating a
run reproduces its split exactly even if files are added to the folder later.
"""

from __future__ import annotations

import numpy as np

from unet_tf.config import DataConfig
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some


def split_samples(samples: list[Sample], cfg: DataConfig) -> tuple[list[Sample], list[Sample]]:
    """Split by recorded names, by fold, or by a seeded fraction, in that order."""
    if cfg.val_names:
        return _split_by_names(samples, cfg.val_names)
    n = len(samples)
    order = np.random.default_rng(cfg.split_seed).permutation(n)
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
        val_idx = order[: max(1, round(n * cfg.val_split))]
    else:
        return samples, []
    chosen = set(val_idx.tolist())
    train = [s for i, s in enumerate(samples) if i not in chosen]
    val = [s for i, s in enumerate(samples) if i in chosen]
    return train, val


def _split_by_names(samples: list[Sample], names: list[str]) -> tuple[list[Sample], list[Sample]]:
    wanted = set(names)
    missing = sorted(wanted - {s.name for s in samples})
    if missing:
        raise UserError(
            f"the recorded validation images are not in the data: {list_some(missing)}; "
            "remove data.val_names from the config to draw a new split"
        )
    return [s for s in samples if s.name not in wanted], [s for s in samples if s.name in wanted]
