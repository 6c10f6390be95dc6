"""The unit every reader yields and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    """One image with whatever ground truth its dataset provides.

    ``mask`` keeps the values as stored (binary, class indices or uint16 instance
    labels): binarisation happens later with the run's threshold, so instance labels
    survive for border weights and object metrics. ``pixel_size`` turns pixel areas
    into µm² in object measurements. ``fov`` restricts the loss and the
    metrics to a field of view (DRIVE); ``weight`` is an extra per-pixel loss weight.
    """

    name: str
    image: np.ndarray  # (H, W, C), raw intensities in the file's dtype
    mask: np.ndarray | None = None  # (H, W) as stored
    fov: np.ndarray | None = None  # (H, W) bool
    weight: np.ndarray | None = None  # (H, W) float32
    path: str = ""
    pixel_size: tuple[float, float] | None = None  # (y, x) in µm, when the file records it

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @property
    def channels(self) -> int:
        return self.image.shape[2]
