"""The tf.data pipeline: samples in memory -> resized or cropped, augmented batches.

Datasets here are small (most users have fewer than 100 images), so every image is
read, checked and resized once up front, and the pipeline caches that. Per-epoch
work (random crops, albumentations) runs in a parallel ``map``.

Batches are ``(image, target)``, or ``(image, target, weight)`` when any sample has
a field of view or a weight map; ``weight`` is 0 where a pixel must not count.

Data that would train a useless model without any error (every mask empty or full,
a ``--mask-threshold`` above every mask value, a long strip squashed to a square)
is reported here with a :class:`~unet_tf.data.checks.DataWarning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from unet_tf.config import RunConfig
from unet_tf.data.augment import apply, build_augmenter
from unet_tf.data.checks import warn
from unet_tf.data.resize import resize_image, resize_nearest
from unet_tf.data.sample import Sample
from unet_tf.data.scale import object_diameter, scale_factor, scaled_shape
from unet_tf.data.targets import (
    cached_instance_target,
    is_separating,
    make_target,
    target_foreground,
)

MAX_ASPECT = 4.0  # longer side / shorter side beyond which --size visibly distorts objects


@dataclass
class Prepared:
    """A sample as the network sees it: float32 arrays with a channel axis."""

    name: str
    image: np.ndarray  # (H, W, C)
    target: np.ndarray  # (H, W, K): K = 1 binary, or one-hot classes
    weight: np.ndarray | None  # (H, W, 1)


def prepare(samples: list[Sample], cfg: RunConfig, resize_to: int | None) -> list[Prepared]:
    """Convert samples to float32 targets and weights, at the size the network trains on.

    That is a ``resize_to`` square if asked, else each image's own size rescaled to
    ``--object-size`` (:func:`training_size`), else the image's native size.
    """
    with_weights = any(s.fov is not None or s.weight is not None for s in samples)
    sizes = [training_size(s, cfg, resize_to) for s in samples]
    targets = [training_target(s, cfg, size) for s, size in zip(samples, sizes, strict=True)]
    warn_degenerate_masks(samples, targets, cfg.data.mask_threshold, cfg.data.target)
    if resize_to:
        warn_squashed(samples, resize_to)
    out = []
    for s, target, size in zip(samples, targets, sizes, strict=True):
        image = s.image.astype(np.float32)
        weight = None
        if with_weights:
            weight = (
                np.ones(s.shape, np.float32) if s.weight is None else s.weight.astype(np.float32)
            )
            if s.fov is not None:
                weight = weight * s.fov.astype(np.float32)
            weight = weight[..., None]
        if size:
            image = resize_image(image, size)
            target = resize_nearest(target, size)  # separating targets already are
            weight = None if weight is None else resize_nearest(weight, size)
        out.append(Prepared(s.name, image, target, weight))
    return out


def training_size(sample: Sample, cfg: RunConfig, resize_to: int | None) -> tuple[int, int] | None:
    """The (h, w) a sample trains at, or None for its native size.

    With ``--object-size``, the reference mask's objects give the factor, measured the
    way inference measures a prediction's (:func:`~unet_tf.data.scale.object_diameter`).
    """
    if resize_to:
        return resize_to, resize_to
    if not cfg.data.object_size:
        return None
    foreground = sample.mask > cfg.data.mask_threshold
    factor = scale_factor(object_diameter(foreground), cfg.data.object_size)
    return None if factor == 1.0 else scaled_shape(sample.shape, factor)


def training_target(
    sample: Sample, cfg: RunConfig, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The (H, W, K) target of ``cfg.data.target``; separating ones at the training size.

    A separating target is built from the cells resized to the training size (and
    cached), because resizing a finished one would thin or break its border bands.
    """
    data = cfg.data
    if not is_separating(data.target):
        return make_target(sample.mask, cfg.model.num_classes, data.mask_threshold, sample.path)
    return cached_instance_target(
        sample.mask, data.target, data.border_width, data.mask_threshold, size
    )


def warn_degenerate_masks(
    samples: list[Sample], targets: list[np.ndarray], threshold: float, target: str = "binary"
) -> None:
    """Warn when no mask has any foreground, or every mask is foreground everywhere.

    Either way the loss has one class to learn and the model ends at Dice 0 (or
    predicts foreground everywhere), after a whole training run without complaint.
    """
    if not samples:
        return
    foreground = [target_foreground(t, target) for t in targets]
    if len(samples) > 1:
        which, be = f"all {len(samples)} masks", "are"
    else:
        which, be = f"the mask of {samples[0].path or samples[0].name}", "is"
    if not any(f.any() for f in foreground):
        top = max(float(s.mask.max()) for s in samples)
        if targets[0].shape[-1] == 1 and top > 0:
            warn(
                f"--mask-threshold {threshold:g} makes {which} empty: the masks go up to "
                f"{top:g} and foreground is mask value > --mask-threshold; use a lower one"
            )
        else:
            warn(
                f"{which} {be} empty (no foreground pixel); the model would learn to predict "
                "only background (Dice 0); check the masks and --mask-threshold"
            )
    elif all(f.all() for f in foreground):
        warn(
            f"{which} {be} foreground everywhere (mask value > --mask-threshold "
            f"{threshold:g}); the model would learn nothing; check the masks and --mask-threshold"
        )


def warn_squashed(samples: list[Sample], side: int) -> None:
    """Warn when ``--size`` squashes long strips to a square, distorting their objects."""
    strips = [s for s in samples if max(s.shape) > MAX_ASPECT * min(s.shape)]
    if not strips:
        return
    h, w = strips[0].shape
    more = f" (and {len(strips) - 1} more such image(s))" if len(strips) > 1 else ""
    warn(
        f"{strips[0].path or strips[0].name} is {w}x{h} px{more}, squashed to {side}x{side} "
        f"by --size {side}, which distorts its objects; train on --patch crops at full "
        "resolution instead"
    )


def random_crop(
    rng: np.random.Generator,
    arrays: list[np.ndarray],
    patch: int,
    fg_prob: float,
    target_name: str = "binary",
) -> list[np.ndarray]:
    """Crop the same random ``patch`` window from each array, mirroring small images.

    ``arrays[1]`` is the target. With probability ``fg_prob`` the window is centred on
    a random foreground pixel (nnU-Net's oversampling), so sparse structures such as
    vessels are seen often.
    """
    h, w = arrays[0].shape[:2]
    pad_h, pad_w = max(patch - h, 0), max(patch - w, 0)
    if pad_h or pad_w:
        pads = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        mode = "reflect" if min(h, w) > 1 else "edge"
        arrays = [np.pad(a, pads, mode=mode) for a in arrays]
        h, w = arrays[0].shape[:2]
    target = arrays[1]
    fg = target_foreground(target, target_name)
    if fg_prob > 0 and rng.random() < fg_prob and fg.any():
        ys, xs = np.nonzero(fg)
        k = rng.integers(len(ys))
        y0 = int(np.clip(ys[k] - patch // 2, 0, h - patch))
        x0 = int(np.clip(xs[k] - patch // 2, 0, w - patch))
    else:
        y0 = int(rng.integers(h - patch + 1))
        x0 = int(rng.integers(w - patch + 1))
    return [a[y0 : y0 + patch, x0 : x0 + patch] for a in arrays]


def make_dataset(items: list[Prepared], cfg: RunConfig, training: bool) -> tf.data.Dataset:
    """Build the batched dataset; training adds shuffling, crops and augmentation."""
    channels = items[0].image.shape[-1]
    classes = items[0].target.shape[-1]
    with_weights = items[0].weight is not None
    signature = [
        tf.TensorSpec((None, None, channels), tf.float32),
        tf.TensorSpec((None, None, classes), tf.float32),
    ]
    if with_weights:
        signature.append(tf.TensorSpec((None, None, 1), tf.float32))

    def lookup(index):
        item = items[int(index)]
        parts = (item.image, item.target)
        return (*parts, item.weight) if with_weights else parts

    def tf_lookup(index):
        parts = tf.numpy_function(lookup, [index], [spec.dtype for spec in signature])
        for part, spec in zip(parts, signature, strict=True):
            part.set_shape(spec.shape)
        return tuple(parts)

    # Not Dataset.from_generator: its kernel sets glibc's M_TRIM_THRESHOLD to 128 kB for
    # the whole process, which stops malloc from keeping freed tensor memory, so every
    # training step faults its buffers in again. Measured on DRIVE's planned U-Net (2-core
    # AMD): 1.9 s a step instead of 1.2, with three times the page faults (docs/benchmarks.md).
    ds = tf.data.Dataset.range(len(items)).map(tf_lookup).cache()
    patch = cfg.data.patch
    if not training:
        # Whole images: resized ones batch together; full-resolution ones go one by one.
        return ds.batch(cfg.train.batch_size if not patch else 1).prefetch(tf.data.AUTOTUNE)

    # Repeat forever: epochs are counted in steps (steps_per_epoch), not passes.
    ds = ds.shuffle(len(items), seed=cfg.train.seed, reshuffle_each_iteration=True).repeat()
    augmenter = build_augmenter(cfg.data.augment, cfg.train.seed)
    rng = np.random.default_rng(cfg.train.seed)
    fg_prob = cfg.data.fg_prob

    def transform(image, target, weight=None):
        weight = np.ones_like(target[..., :1]) if weight is None else weight
        if patch:
            image, target, weight = random_crop(
                rng, [image, target, weight], patch, fg_prob, cfg.data.target
            )
        image, target, weight = apply(augmenter, image, target, weight)
        return (
            np.ascontiguousarray(image, np.float32),
            np.ascontiguousarray(target, np.float32),
            np.ascontiguousarray(weight, np.float32),
        )

    side = patch or cfg.data.size

    def tf_transform(*parts):
        image, target, weight = tf.numpy_function(
            transform, list(parts), [tf.float32, tf.float32, tf.float32]
        )
        image.set_shape((side, side, channels))
        target.set_shape((side, side, classes))
        weight.set_shape((side, side, 1))
        return (image, target, weight) if with_weights else (image, target)

    ds = ds.map(tf_transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n_items: int, cfg: RunConfig) -> int:
    """Batches in one epoch: the configured number, or one pass over the data."""
    return cfg.data.steps_per_epoch or math.ceil(n_items / cfg.train.batch_size)
