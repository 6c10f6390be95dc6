"""Every loss against values computed by hand, with and without pixel weights."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from unet_tf.config import TrainConfig
from unet_tf.training.losses import (
    BinaryCrossentropy,
    DiceFocalLoss,
    DiceLoss,
    FocalLogDiceLoss,
    FocalLoss,
    WeightedBinaryCrossentropy,
    get_loss,
)

# One image of four pixels: truth 1, 1, 0, 0 and predictions 0.9, 0.6, 0.2, 0.4.
Y = np.array([1, 1, 0, 0], np.float32).reshape(1, 2, 2, 1)
P = np.array([0.9, 0.6, 0.2, 0.4], np.float32).reshape(1, 2, 2, 1)
W = np.array([1, 2, 0, 1], np.float32).reshape(1, 2, 2)

BCE = [-math.log(0.9), -math.log(0.6), -math.log(0.8), -math.log(0.6)]


def focal_terms(alpha, gamma):
    return [
        -alpha * (0.1**gamma) * math.log(0.9),
        -alpha * (0.4**gamma) * math.log(0.6),
        -(1 - alpha) * (0.2**gamma) * math.log(0.8),
        -(1 - alpha) * (0.4**gamma) * math.log(0.6),
    ]


def value(loss, w=None):
    return float(loss(Y, P, sample_weight=w))


def test_bce_mean_and_weighted_mean():
    assert value(BinaryCrossentropy()) == pytest.approx(np.mean(BCE), rel=1e-5)
    expected = (1 * BCE[0] + 2 * BCE[1] + 0 + 1 * BCE[3]) / 4
    assert value(BinaryCrossentropy(), W) == pytest.approx(expected, rel=1e-5)


def test_focal_by_hand():
    for alpha, gamma in [(0.8, 2.0), (0.25, 0.9)]:
        expected = np.mean(focal_terms(alpha, gamma))
        assert value(FocalLoss(alpha, gamma)) == pytest.approx(expected, rel=1e-5)


def test_focal_with_gamma_zero_and_alpha_half_is_half_bce():
    assert value(FocalLoss(0.5, 0.0)) == pytest.approx(0.5 * np.mean(BCE), rel=1e-5)


def test_soft_dice_by_hand():
    # intersection 0.9 + 0.6 = 1.5; sum p = 2.1; sum y = 2; smoothing 1.
    dice = (2 * 1.5 + 1) / (2.1 + 2 + 1)
    assert value(DiceLoss()) == pytest.approx(1 - dice, rel=1e-5)
    # weighted: intersection 0.9 + 1.2 = 2.1; sum wp = 0.9 + 1.2 + 0 + 0.4 = 2.5; sum wy = 3
    dice_w = (2 * 2.1 + 1) / (2.5 + 3 + 1)
    assert value(DiceLoss(), W) == pytest.approx(1 - dice_w, rel=1e-5)


def test_dice_focal_is_the_sum():
    dice = (2 * 1.5 + 1) / (2.1 + 2 + 1)
    expected = 1 - dice + np.mean(focal_terms(0.8, 0.9))
    assert value(DiceFocalLoss(0.8, 0.9)) == pytest.approx(expected, rel=1e-5)


def test_focal_logdice_by_hand():
    dice = (2 * 1.5 + 1) / (2.1 + 2 + 1)
    expected = 3.0 * np.mean(focal_terms(0.8, 0.9)) - math.log(dice)
    assert value(FocalLogDiceLoss(0.8, 0.9, weight=3.0)) == pytest.approx(expected, rel=1e-5)


def test_weighted_bce_balances_classes_without_weights():
    # 2 foreground and 2 background pixels: both class weights are 1, so plain BCE.
    assert value(WeightedBinaryCrossentropy()) == pytest.approx(np.mean(BCE), rel=1e-5)
    y = np.array([1, 0, 0, 0], np.float32).reshape(1, 2, 2, 1)
    # weights: fg 4/(2*1) = 2, bg 4/(2*3) = 2/3
    terms = [-math.log(0.9), -math.log(0.4), -math.log(0.8), -math.log(0.6)]
    w = [2, 2 / 3, 2 / 3, 2 / 3]
    expected = sum(a * b for a, b in zip(w, terms, strict=True)) / sum(w)
    assert float(WeightedBinaryCrossentropy()(y, P)) == pytest.approx(expected, rel=1e-5)


def test_weighted_bce_uses_given_weights():
    expected = (1 * BCE[0] + 2 * BCE[1] + 1 * BCE[3]) / 4
    assert value(WeightedBinaryCrossentropy(), W) == pytest.approx(expected, rel=1e-5)


def test_zero_weight_pixels_do_not_matter():
    p2 = P.copy()
    p2[0, 1, 0, 0] = 0.99  # the pixel with weight 0 becomes a bad prediction
    for loss in [BinaryCrossentropy(), FocalLoss(), DiceLoss(), DiceFocalLoss()]:
        assert float(loss(Y, p2, sample_weight=W)) == pytest.approx(value(loss, W), rel=1e-5)


def test_categorical_crossentropy_and_dice_for_two_classes():
    y = np.concatenate([1 - Y, Y], axis=-1)
    p = np.concatenate([1 - P, P], axis=-1)
    assert float(BinaryCrossentropy()(y, p)) == pytest.approx(np.mean(BCE), rel=1e-5)
    # Dice averages foreground classes only: class 1 here, as in the binary case.
    assert float(DiceLoss()(y, p)) == pytest.approx(value(DiceLoss()), rel=1e-5)


def test_losses_accept_bfloat16_predictions():
    import tensorflow as tf

    out = BinaryCrossentropy()(Y, tf.cast(P, tf.bfloat16))
    assert out.dtype == tf.float32
    assert float(out) == pytest.approx(np.mean(BCE), rel=1e-2)


@pytest.mark.parametrize(
    "name,cls,gamma",
    [
        ("bce", BinaryCrossentropy, None),
        ("weighted-bce", WeightedBinaryCrossentropy, None),
        ("focal", FocalLoss, 2.0),
        ("dice", DiceLoss, None),
        ("dice-focal", DiceFocalLoss, 0.9),
        ("focal-logdice", FocalLogDiceLoss, 0.9),
    ],
)
def test_registry_defaults_and_serialisation(name, cls, gamma):
    loss = get_loss(TrainConfig(loss=name))
    assert isinstance(loss, cls)
    if gamma is not None:
        assert loss.gamma == gamma
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert float(restored(Y, P)) == pytest.approx(float(loss(Y, P)), rel=1e-6)
