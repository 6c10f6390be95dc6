"""The one resize used in training, inference and inside exported models.

Images use TensorFlow's antialiased bilinear filter (a proper low-pass when
shrinking); masks and weight maps use nearest neighbour so labels stay labels.
Sharing these functions keeps training, ``predict`` and SavedModels in agreement.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of float (H, W, C) or (B, H, W, C) to ``size`` = (h, w)."""
    if tuple(image.shape[-3:-1]) == tuple(size):
        return np.asarray(image, np.float32)
    out = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    return out.numpy()


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (H, W, C) label or weight maps."""
    h, w = size
    if array.shape[:2] == (h, w):
        return array
    out = cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST)
    return out.reshape(h, w, array.shape[2])
