"""A dataset's fingerprint: the few numbers a training recipe should depend on.

As nnU-Net does, the plan is derived from measured properties of the data rather than
guessed: how large the images and the objects are, how much of an image is
foreground, whether the structures are thin (vessels, membranes) or blob-like
(nuclei, cells), and whether the images are frames of one time series. Everything is
computed from the annotated images as they are read for training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from skimage.measure import label, regionprops
from skimage.morphology import skeletonize

from unet_tf.data.sample import Sample
from unet_tf.data.targets import has_instances

# A structure whose skeleton is long for its area is made of thin lines: skeleton
# length / area is about 1/w for lines w px wide and near 0 for round objects. It is
# measured on the rarer class (ISBI's membranes are background, DRIVE's vessels
# foreground). Above this score the lines are under ~8 px wide: vessels, membranes.
THIN_SCORE = 0.12
MAX_PIXELS = 1024 * 1024  # larger masks are subsampled for the object statistics


@dataclass(frozen=True)
class Fingerprint:
    images: int
    median_height: int
    median_width: int
    min_side: int
    max_aspect: float  # longest over shortest side, worst image
    channels: int
    bit_depth: int  # 8, 16, or 32 for float images
    intensity_percentiles: tuple[float, float, float]  # 0.5, 50, 99.5 over all pixels
    intensity_spread: float  # coefficient of variation of the images' median intensities
    foreground_fraction: float  # mean over images
    object_count: int  # median objects per image
    object_diameter: float  # median equivalent diameter, px (0 when no objects)
    thin_score: float  # skeleton length / area of the rarer class, pooled
    instances: bool  # the masks label cells one by one (unet_tf.data.targets.has_instances)
    time_series: bool  # frames of one sequence (CTC, video): split in blocks
    field_of_view: bool  # a FOV restricts where pixels count (DRIVE)

    @property
    def thin(self) -> bool:
        return self.thin_score >= THIN_SCORE

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["intensity_percentiles"] = list(self.intensity_percentiles)
        return out


def _bit_depth(image: np.ndarray) -> int:
    if np.issubdtype(image.dtype, np.floating):
        return 32
    return 16 if image.dtype.itemsize >= 2 else 8


def _objects(mask: np.ndarray, threshold: float) -> np.ndarray:
    """Object labels of one mask: its own instance labels, else connected components."""
    values = np.unique(mask[mask > threshold])
    if len(values) > 1 and np.issubdtype(mask.dtype, np.integer):
        return np.where(mask > threshold, mask, 0).astype(np.int64)
    return label(mask > threshold, connectivity=2)


def fingerprint(
    samples: list[Sample], time_series: bool = False, mask_threshold: float = 0.0
) -> Fingerprint:
    """Measure the annotated ``samples`` (as the readers return them)."""
    heights = [s.shape[0] for s in samples]
    widths = [s.shape[1] for s in samples]
    pixels = np.concatenate(
        [s.image.reshape(-1)[:: max(1, s.image.size // 200_000)] for s in samples]
    )
    medians = np.array([float(np.median(s.image)) for s in samples])
    fractions, diameters, counts = [], [], []
    skeleton_length = structure_area = 0
    instances = False
    for s in samples:
        if s.mask is None:
            continue
        step = max(1, int(np.ceil(np.sqrt(s.mask.size / MAX_PIXELS))))
        mask = s.mask[::step, ::step]
        foreground = mask > mask_threshold
        if s.fov is not None:
            foreground &= s.fov[::step, ::step]
        fractions.append(float(foreground.mean()))
        objects = _objects(mask, mask_threshold)
        instances |= has_instances(s.mask)  # the rule --target auto follows
        regions = regionprops(objects)
        counts.append(len(regions))
        diameters += [r.equivalent_diameter_area * step for r in regions]
        inside = s.fov[::step, ::step] if s.fov is not None else np.ones_like(foreground)
        rarer = foreground if foreground.mean() <= 0.5 * inside.mean() else inside & ~foreground
        skeleton_length += int(skeletonize(rarer).sum()) * step
        structure_area += int(rarer.sum()) * step * step
    low, mid, high = np.percentile(pixels, [0.5, 50, 99.5])
    spread = float(medians.std() / medians.mean()) if medians.mean() > 0 else 0.0
    return Fingerprint(
        images=len(samples),
        median_height=int(np.median(heights)),
        median_width=int(np.median(widths)),
        min_side=int(min(min(heights), min(widths))),
        max_aspect=float(max(max(h, w) / min(h, w) for h, w in zip(heights, widths, strict=True))),
        channels=samples[0].channels,
        bit_depth=_bit_depth(samples[0].image),
        intensity_percentiles=(float(low), float(mid), float(high)),
        intensity_spread=round(spread, 4),
        foreground_fraction=round(float(np.mean(fractions)) if fractions else 0.0, 4),
        object_count=int(np.median(counts)) if counts else 0,
        object_diameter=round(float(np.median(diameters)) if diameters else 0.0, 2),
        thin_score=round(skeleton_length / structure_area, 4) if structure_area else 0.0,
        instances=instances,
        time_series=time_series,
        field_of_view=any(s.fov is not None for s in samples),
    )
