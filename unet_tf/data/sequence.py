"""Do a folder's images look like frames of one sequence? Measured from the pixels.

CTC and video layouts say so themselves, and their validation is a block of frames
(:mod:`~unet_tf.data.splits`). A plain folder of images says nothing, yet biologists
often export a time-lapse or a stack of serial sections frame by frame into one. A
random split then validates on near copies of training images, and the validation
score (and the threshold chosen on it) measures memory rather than generalisation.

The test shrinks each image to a small thumbnail normalised to zero mean and unit
variance and correlates every pair. Frames of a sequence correlate with their
successor in reading order far more than with frames a quarter of the folder or more
away; separate photographs (DRIVE's eyes, DSB's hashed names) correlate with their
listing neighbour no more than with any other image. Both conditions must hold: the
neighbours' median beats the distant pairs' median by a margin, and it beats the
distant pairs' 90th percentile, so that a few chance pairs in a small folder do not
decide it (random disc images, 6-12 of them, never passed). Measured on
``../shared/data`` (median neighbour / distant / distant 90th percentile): HeLa DIC
folder 0.66 / 0.10 / 0.43, ISBI 2012 sections 0.43 / 0.03 / 0.09, CTC HeLa
0.32 / 0.12 / 0.16, CTC U373 0.84 / 0.21 / 0.27; DRIVE 0.954 / 0.959 / 0.980,
DSB 2018 0.00 / 0.00 / 0.07.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from unet_tf.data.sample import Sample

# Thumbnail side: enough for a frame's layout, too coarse for noise or texture.
THUMB = 64
# Neighbours must beat the distant pairs' median by this much correlation (sequences
# above beat it by 0.20 or more, separate photographs not at all).
MARGIN = 0.15
# Below this many images there are too few pairs to tell; beyond the cap the first
# images in reading order decide (a long sequence shows itself early).
MIN_IMAGES, MAX_IMAGES = 6, 200


@dataclass(frozen=True)
class FrameLikeness:
    """Correlation of each image with its successor (median) and with distant images."""

    neighbour: float
    distant: float  # median over pairs a quarter of the images (at least 2) apart
    distant_high: float  # their 90th percentile

    @property
    def frames(self) -> bool:
        return self.neighbour - self.distant > MARGIN and self.neighbour > self.distant_high


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = np.asarray(image, np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    small = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return ((small - small.mean()) / (small.std() + 1e-6)).ravel()


def frame_likeness(samples: Sequence[Sample]) -> FrameLikeness | None:
    """How alike neighbouring and distant images are, in reading order; None if too few."""
    if len(samples) < MIN_IMAGES:
        return None
    thumbs = np.stack([_thumbnail(s.image) for s in samples[:MAX_IMAGES]])
    n = len(thumbs)
    corr = thumbs @ thumbs.T / thumbs.shape[1]
    i, j = np.triu_indices(n, k=max(2, n // 4))
    distant = corr[i, j]
    return FrameLikeness(
        float(np.median(np.diagonal(corr, offset=1))),
        float(np.median(distant)),
        float(np.quantile(distant, 0.9)),
    )
