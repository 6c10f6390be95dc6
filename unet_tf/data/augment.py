"""Augmentation with albumentations: one transform moves image, mask and weights together.

Transforms are named so that a run's ``config.yaml`` lists them as plain strings.
Geometric transforms use nearest-neighbour for masks and weights and mirror the
border, so no artificial black wedges are taught as background.
"""

from __future__ import annotations

from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np

from unet_tf.errors import UserError

TRANSFORMS: dict[str, Callable[[], A.BasicTransform]] = {
    "hflip": lambda: A.HorizontalFlip(p=0.5),
    "vflip": lambda: A.VerticalFlip(p=0.5),
    "rot90": lambda: A.RandomRotate90(p=0.5),
    "rotate": lambda: A.Rotate(limit=180, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
}


def build_augmenter(names: list[str], seed: int | None = None) -> A.Compose | None:
    """Compose the named transforms; an empty list (or ``none``) means no augmentation."""
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise UserError(
            f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}"
        )
    if not names:
        return None
    return A.Compose(
        [TRANSFORMS[n]() for n in names],
        additional_targets={"weight": "mask"},
        seed=seed,
    )


def apply(
    augmenter: A.Compose | None, image: np.ndarray, target: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment float32 (H, W, C) image, (H, W, K) target and (H, W, 1) weight alike."""
    if augmenter is None:
        return image, target, weight
    out = augmenter(image=image, mask=target, weight=weight)
    return out["image"], out["mask"], out["weight"]
