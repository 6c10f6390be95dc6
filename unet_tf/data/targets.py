"""What the network learns from a mask, and the labels a prediction is scored against.

One home for the mask -> target -> labels conversion, so training, ``evaluate``,
``predict`` and reports all read a mask the same way (``--mask-threshold``,
``--classes``).
"""

from __future__ import annotations

import numpy as np

from unet_tf.errors import UserError


def make_target(mask: np.ndarray, num_classes: int, threshold: float, path: str = "") -> np.ndarray:
    """Binary foreground (value > threshold) or one-hot classes (values 0..N-1)."""
    if num_classes == 1:
        return (mask > threshold).astype(np.float32)[..., None]
    values = mask.astype(np.int64)
    if values.min() < 0 or values.max() >= num_classes:
        raise UserError(
            f"mask {path} has values {int(values.min())}..{int(values.max())}, but "
            f"--classes {num_classes} needs class indices 0..{num_classes - 1}"
        )
    return np.eye(num_classes, dtype=np.float32)[values]


def truth_labels(
    mask: np.ndarray, num_classes: int, threshold: float, path: str = ""
) -> np.ndarray:
    """(H, W) uint8 ground-truth labels: 0/1 foreground, or the class index per pixel.

    The same labels ``to_mask`` makes of a prediction, so the two compare pixel by pixel.
    """
    target = make_target(mask, num_classes, threshold, path)
    if num_classes == 1:
        return (target[..., 0] > 0.5).astype(np.uint8)
    return np.argmax(target, axis=-1).astype(np.uint8)
