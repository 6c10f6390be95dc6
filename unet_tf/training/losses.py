"""Segmentation losses as registered, serializable Keras objects.

Every loss takes per-pixel sample weights: a field-of-view mask (0 outside the FOV)
or a U-Net border weight map. Keras would multiply a weight into an elementwise
loss and then average; that is wrong for Dice, which is a ratio of sums. So these
losses take the weights themselves (``__call__`` is overridden) and reduce to a
scalar:

- elementwise terms (BCE, focal) are weighted means: sum(w * l) / sum(w);
- Dice sums w * p * y, w * p and w * y over the whole batch (batch Dice), with a
  smoothing of 1 so that images without foreground give a finite, small loss.

With one output channel the target is binary; with C > 1 channels the target is
one-hot, cross-entropies are categorical and Dice averages the C - 1 foreground
classes. Probabilities are clipped to [1e-7, 1 - 1e-7] before any logarithm.

The ``distance`` target's two sigmoid channels are neither: :func:`get_loss` wraps the
configured loss in :class:`DistanceTargetLoss`, which applies it to the foreground
(channel 0; and to the ``contact`` target's contacts, channel 2) and adds a regression
of the distance map (channel 1). The target picks
the wrapper, so there is no loss name to get wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from unet_tf.config import TrainConfig
from unet_tf.data.targets import TARGETS, multilabel
from unet_tf.registry import Registry
from unet_tf.runtime.distribute import replicas_in_sync

PACKAGE = "unet_tf"
EPSILON = 1e-7
DICE_SMOOTH = 1.0
# Soft-skeleton erosions: enough for lines up to ~10 px wide (DRIVE's widest vessels).
CLDICE_ITERATIONS = 5


def pixel_weights(y_true: tf.Tensor, sample_weight) -> tf.Tensor:
    """Broadcastable (B, H, W, 1) float32 weights from None, (B,), (B, H, W) or (B, H, W, 1)."""
    if sample_weight is None:
        return tf.ones_like(y_true[..., :1])
    w = tf.cast(sample_weight, tf.float32)
    rank = len(w.shape)
    if rank == 1:
        return tf.reshape(w, [-1, 1, 1, 1])
    if rank == 3:
        return w[..., None]
    return w


def weighted_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """sum(w * v) / sum(w) over every pixel of the batch (0 when all weights are 0)."""
    total = tf.reduce_sum(weights * tf.ones_like(values))
    return tf.math.divide_no_nan(tf.reduce_sum(weights * values), total)


def crossentropy_map(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-pixel (B, H, W, 1) binary or categorical cross-entropy."""
    p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    if y_pred.shape[-1] == 1:
        return -(y_true * tf.math.log(p) + (1.0 - y_true) * tf.math.log(1.0 - p))
    return -tf.reduce_sum(y_true * tf.math.log(p), axis=-1, keepdims=True)


def focal_map(y_true: tf.Tensor, y_pred: tf.Tensor, alpha: float, gamma: float) -> tf.Tensor:
    """Per-pixel focal loss (Lin et al. 2017); ``alpha`` weighs the foreground (binary only)."""
    p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    if y_pred.shape[-1] == 1:
        fg = -alpha * y_true * tf.pow(1.0 - p, gamma) * tf.math.log(p)
        bg = -(1.0 - alpha) * (1.0 - y_true) * tf.pow(p, gamma) * tf.math.log(1.0 - p)
        return fg + bg
    return -tf.reduce_sum(y_true * tf.pow(1.0 - p, gamma) * tf.math.log(p), axis=-1, keepdims=True)


def soft_dice(y_true: tf.Tensor, y_pred: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Weighted batch soft Dice, averaged over the foreground classes."""
    if y_pred.shape[-1] > 1:
        y_true, y_pred = y_true[..., 1:], y_pred[..., 1:]
    axes = [0, 1, 2]
    intersection = tf.reduce_sum(weights * y_true * y_pred, axis=axes)
    total = tf.reduce_sum(weights * y_pred, axis=axes) + tf.reduce_sum(weights * y_true, axis=axes)
    return tf.reduce_mean((2.0 * intersection + DICE_SMOOTH) / (total + DICE_SMOOTH))


def soft_erode(x: tf.Tensor) -> tf.Tensor:
    """Min over a plus-shaped 3x3 neighbourhood: a differentiable erosion."""
    vertical = -tf.nn.max_pool2d(-x, (3, 1), 1, "SAME")
    horizontal = -tf.nn.max_pool2d(-x, (1, 3), 1, "SAME")
    return tf.minimum(vertical, horizontal)


def soft_open(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.max_pool2d(soft_erode(x), 3, 1, "SAME")


def soft_skeleton(x: tf.Tensor, iterations: int) -> tf.Tensor:
    """Shit et al.'s (2021) soft skeleton: what each of ``iterations`` erosions peels off
    but an opening would not restore. A line w px wide needs about w / 2 iterations."""
    skeleton = tf.nn.relu(x - soft_open(x))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = tf.nn.relu(x - soft_open(x))
        skeleton += tf.nn.relu(delta - skeleton * delta)
    return skeleton


def soft_cldice(
    y_true: tf.Tensor, y_pred: tf.Tensor, weights: tf.Tensor, iterations: int
) -> tf.Tensor:
    """Soft centreline Dice: the harmonic mean of the share of the predicted skeleton
    inside the reference (topology precision) and of the reference's skeleton inside the
    prediction (topology sensitivity), over the batch and the foreground classes."""
    if y_pred.shape[-1] > 1:
        y_true, y_pred = y_true[..., 1:], y_pred[..., 1:]

    def covered(mask: tf.Tensor, other: tf.Tensor) -> tf.Tensor:
        """The share of ``mask``'s soft skeleton that lies inside ``other``, per class."""
        skeleton = weights * soft_skeleton(mask, iterations)
        inside = tf.reduce_sum(skeleton * other, axis=[0, 1, 2])
        return (inside + DICE_SMOOTH) / (tf.reduce_sum(skeleton, axis=[0, 1, 2]) + DICE_SMOOTH)

    precision, sensitivity = covered(y_pred, y_true), covered(y_true, y_pred)
    return tf.reduce_mean(2.0 * precision * sensitivity / (precision + sensitivity))


class SegmentationLoss(keras.losses.Loss):
    """Base class: casts to float32, normalises the weights, returns a scalar."""

    def __init__(self, name: str, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            y_pred = tf.cast(y_pred, tf.float32)
            y_true = tf.cast(y_true, tf.float32)
            loss = self.compute(y_true, y_pred, pixel_weights(y_true, sample_weight))
            # Replicas' gradients are summed, so each contributes 1/N (as Keras's losses do).
            return loss / replicas_in_sync()

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        return self.compute(y_true, tf.cast(y_pred, tf.float32), pixel_weights(y_true, None))

    def compute(self, y_true: tf.Tensor, y_pred: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryCrossentropy(SegmentationLoss):
    """Weighted mean cross-entropy."""

    def __init__(self, name: str = "bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, y_true, y_pred, weights):
        return weighted_mean(crossentropy_map(y_true, y_pred), weights)


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedBinaryCrossentropy(SegmentationLoss):
    """Cross-entropy with per-pixel weights (U-Net border weights, FOV masks).

    Without weights from the data it balances the classes within the batch, so that
    foreground and background pixels contribute equally (the w_c term of the U-Net
    paper's weight map).
    """

    def __init__(self, name: str = "weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            sample_weight = class_balance_weights(tf.cast(y_true, tf.float32))
        return super().__call__(y_true, y_pred, sample_weight)

    def compute(self, y_true, y_pred, weights):
        return weighted_mean(crossentropy_map(y_true, y_pred), weights)


def class_balance_weights(y_true: tf.Tensor) -> tf.Tensor:
    """(B, H, W, 1) weights giving each class half of the total (binary targets)."""
    fg = y_true[..., :1] if y_true.shape[-1] == 1 else 1.0 - y_true[..., :1]
    n = tf.cast(tf.size(fg), tf.float32)
    n_fg = tf.reduce_sum(fg)
    w_fg = tf.math.divide_no_nan(n, 2.0 * n_fg)
    w_bg = tf.math.divide_no_nan(n, 2.0 * (n - n_fg))
    return fg * w_fg + (1.0 - fg) * w_bg


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalLoss(SegmentationLoss):
    """Weighted mean focal loss."""

    def __init__(self, alpha: float = 0.8, gamma: float = 2.0, name: str = "focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.gamma = alpha, gamma

    def compute(self, y_true, y_pred, weights):
        return weighted_mean(focal_map(y_true, y_pred, self.alpha, self.gamma), weights)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceLoss(SegmentationLoss):
    """1 - soft Dice."""

    def __init__(self, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, y_true, y_pred, weights):
        return 1.0 - soft_dice(y_true, y_pred, weights)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceFocalLoss(FocalLoss):
    """(1 - soft Dice) + focal, equally weighted: the first study's loss."""

    def __init__(self, alpha: float = 0.8, gamma: float = 0.9, name: str = "dice_focal", **kwargs):
        super().__init__(alpha=alpha, gamma=gamma, name=name, **kwargs)

    def compute(self, y_true, y_pred, weights):
        return 1.0 - soft_dice(y_true, y_pred, weights) + super().compute(y_true, y_pred, weights)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiceFocalClDiceLoss(DiceFocalLoss):
    """The first study's loss plus (1 - soft clDice): Dice counts a vessel's pixels, so a
    1 px gap that cuts a vessel tree costs almost nothing; the centreline term scores the
    skeletons, so it does (Shit et al. 2021, clDice, on DRIVE among others)."""

    def __init__(
        self,
        alpha: float = 0.8,
        gamma: float = 0.9,
        iterations: int = CLDICE_ITERATIONS,
        name: str = "dice_focal_cldice",
        **kwargs,
    ):
        super().__init__(alpha=alpha, gamma=gamma, name=name, **kwargs)
        self.iterations = iterations

    def compute(self, y_true, y_pred, weights):
        centreline = soft_cldice(y_true, y_pred, weights, self.iterations)
        return super().compute(y_true, y_pred, weights) + 1.0 - centreline

    def get_config(self):
        return {**super().get_config(), "iterations": self.iterations}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FocalLogDiceLoss(FocalLoss):
    """weight * focal - log(soft Dice): the first study's second loss."""

    def __init__(
        self,
        alpha: float = 0.8,
        gamma: float = 0.9,
        weight: float = 1.0,
        name: str = "focal_logdice",
        **kwargs,
    ):
        super().__init__(alpha=alpha, gamma=gamma, name=name, **kwargs)
        self.weight = weight

    def compute(self, y_true, y_pred, weights):
        dice = tf.maximum(soft_dice(y_true, y_pred, weights), EPSILON)
        return self.weight * super().compute(y_true, y_pred, weights) - tf.math.log(dice)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistanceTargetLoss(SegmentationLoss):
    """``foreground`` on the mask channels plus ``weight`` * cross-entropy of the distance map.

    The distance map is channel 1. ``mask_channels`` are the channels scored by
    ``foreground``: 0 (the foreground), and the ``contact`` target's 2, a contact band,
    thin and rare like the vessels and membranes the Dice and focal losses are made
    for. :func:`get_loss` reads them from the target's registered channel names and
    the saved loss keeps them, so a loss never guesses them from a tensor's shape.

    The map is a soft target in [0, 1] behind a sigmoid; its cross-entropy has the
    gradient p - y, where a squared error's, 2 (p - y) p (1 - p), fades at the cells'
    peaks (1) and the background (0), the values the seeds depend on. The foreground
    loss is called whole, so a weighted-bce still balances its classes.
    """

    def __init__(
        self,
        foreground: SegmentationLoss | dict | None = None,
        weight: float = 1.0,
        mask_channels: tuple[int, ...] | list[int] = (0,),
        name: str = "distance_target",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if isinstance(foreground, dict):
            foreground = keras.saving.deserialize_keras_object(foreground)
        self.foreground = foreground or DiceFocalLoss()
        self.weight = weight
        self.mask_channels = tuple(mask_channels)

    def __call__(self, y_true, y_pred, sample_weight=None):
        masks = sum(
            self.foreground(y_true[..., c : c + 1], y_pred[..., c : c + 1], sample_weight)
            for c in self.mask_channels
        )
        return masks + super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        masks = sum(
            self.foreground.call(y_true[..., c : c + 1], y_pred[..., c : c + 1])
            for c in self.mask_channels
        )
        return masks + super().call(y_true, y_pred)

    def compute(self, y_true, y_pred, weights):
        """The distance term alone; the foreground's is added by ``__call__`` / ``call``."""
        return self.weight * weighted_mean(
            crossentropy_map(y_true[..., 1:2], y_pred[..., 1:2]), weights
        )

    def get_config(self):
        return {
            **super().get_config(),
            "foreground": keras.saving.serialize_keras_object(self.foreground),
            "weight": self.weight,
            "mask_channels": list(self.mask_channels),
        }


def _gamma(cfg: TrainConfig, default: float) -> float:
    return default if cfg.focal_gamma is None else cfg.focal_gamma


LossFactory = Callable[[TrainConfig], SegmentationLoss]
LOSSES: Registry[LossFactory] = Registry("loss", "--loss")
LOSSES.add("bce", lambda cfg: BinaryCrossentropy(), "weighted mean binary cross-entropy")
LOSSES.add(
    "weighted-bce",
    lambda cfg: WeightedBinaryCrossentropy(),
    "BCE with the data's weight maps (U-Net border weights), else class-balanced",
)
LOSSES.add(
    "focal",
    lambda cfg: FocalLoss(alpha=cfg.focal_alpha, gamma=_gamma(cfg, 2.0)),
    "Lin et al.'s focal loss (alpha 0.8, gamma 2)",
)
LOSSES.add("dice", lambda cfg: DiceLoss(), "1 - soft Dice over the batch")
LOSSES.add(
    "dice-focal",
    lambda cfg: DiceFocalLoss(alpha=cfg.focal_alpha, gamma=_gamma(cfg, 0.9)),
    "soft Dice loss + focal (gamma 0.9), the first study's loss",
)
LOSSES.add(
    "dice-focal-cldice",
    lambda cfg: DiceFocalClDiceLoss(alpha=cfg.focal_alpha, gamma=_gamma(cfg, 0.9)),
    "dice-focal + (1 - soft clDice), for vessels and other thin structures",
)
LOSSES.add(
    "focal-logdice",
    lambda cfg: FocalLogDiceLoss(
        alpha=cfg.focal_alpha, gamma=_gamma(cfg, 0.9), weight=cfg.logdice_weight
    ),
    "alpha * focal - log(soft Dice)",
)


def get_loss(cfg: TrainConfig, target: str = "binary") -> SegmentationLoss:
    """The loss a training config names, with its hyper-parameters, for ``target``.

    For a target of independent sigmoid channels (``distance``, ``contact``) the named
    loss scores each mask channel, every channel but the distance map, inside
    :class:`DistanceTargetLoss`.
    """
    loss = LOSSES.get(cfg.loss)(cfg)
    if not multilabel(target):
        return loss
    return DistanceTargetLoss(loss, mask_channels=TARGETS.get(target).mask_channels)
