"""Object-size normalisation: each image rescaled so its objects have one size.

DSB 2018 mixes nuclei 8 px and 45 px across. A network trained at native scale must
part touching 8 px nuclei with the same filters that outline 45 px ones, and on DSB
most of its merges were of small, dense nuclei (docs/data.md). Cellpose rescales every
image to one object diameter instead; ``--object-size`` does the same here.

The diameter of an image's objects is read from a foreground mask alone, so that
training (the reference mask) and inference (the predicted mask) measure it the same
way: each connected component's largest inscribed disc, whose diameter is twice the
component's largest distance to background. Touching cells merged into one component
keep the diameter of one cell, so a rough first prediction is enough to measure it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Rescale factors are clipped to this range: further than 4x in either direction, the
# measurement is more likely wrong (debris, one huge clump) than the objects that odd.
MIN_FACTOR, MAX_FACTOR = 0.25, 4.0
# Within this relative change, an image is left at its own scale (a resize would only blur).
KEEP_WITHIN = 0.1


def object_diameter(foreground: np.ndarray) -> float | None:
    """Median inscribed diameter (px) of the objects of an (H, W) mask; None when empty.

    The median is weighted by each component's area, so specks of debris or noise,
    however many, do not decide an image's scale.
    """
    foreground = np.asarray(foreground, bool)
    labels, n = ndimage.label(foreground)
    if n == 0:
        return None
    depth = ndimage.distance_transform_edt(foreground)
    index = np.arange(1, n + 1)
    peaks = np.asarray(ndimage.maximum(depth, labels, index), np.float64)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    order = np.argsort(peaks)
    cumulative = np.cumsum(areas[order])
    median = peaks[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    return 2.0 * float(median)


def scale_factor(diameter: float | None, object_size: float) -> float:
    """The factor that brings objects of ``diameter`` px to ``object_size`` px.

    1.0 when nothing was measured or the change is within :data:`KEEP_WITHIN`.
    """
    if not diameter:
        return 1.0
    factor = float(np.clip(object_size / diameter, MIN_FACTOR, MAX_FACTOR))
    return 1.0 if abs(factor - 1.0) <= KEEP_WITHIN else factor


def scaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """(h, w) of an image of ``shape`` rescaled by ``factor``, at least 1 px each."""
    return max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor))
