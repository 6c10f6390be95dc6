"""Every loss against values computed by hand, with and without pixel weights."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from unet_tf.config import TrainConfig
from unet_tf.training.losses import (
    CLDICE_ITERATIONS,
    BinaryCrossentropy,
    DiceFocalClDiceLoss,
    DiceFocalLoss,
    DiceLoss,
    DistanceTargetLoss,
    FocalLogDiceLoss,
    FocalLoss,
    WeightedBinaryCrossentropy,
    get_loss,
    soft_cldice,
    soft_skeleton,
)
from unet_tf.training.metrics import training_metrics

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
        ("dice-focal-cldice", DiceFocalClDiceLoss, 0.9),
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


def bar(rows: slice, columns: slice = slice(None)) -> np.ndarray:
    """A (1, 11, 11, 1) image that is 1 on ``rows`` x ``columns``."""
    image = np.zeros((1, 11, 11, 1), np.float32)
    image[0, rows, columns] = 1.0
    return image


def test_the_soft_skeleton_of_a_bar_is_its_middle_line_and_a_line_its_own():
    thick = bar(slice(4, 7))  # 3 px wide, the full width
    assert np.array_equal(soft_skeleton(thick, CLDICE_ITERATIONS).numpy(), bar(slice(5, 6)))
    line = bar(slice(5, 6), slice(2, 9))
    assert np.array_equal(soft_skeleton(line, CLDICE_ITERATIONS).numpy(), line)


def test_cldice_scores_the_centreline_not_the_pixels():
    truth, weights = bar(slice(4, 7)), np.ones((1, 11, 11, 1), np.float32)
    centre = bar(slice(5, 6))  # Dice 2 * 11 / (33 + 11) = 0.5, but the topology is whole
    assert float(soft_cldice(truth, centre, weights, CLDICE_ITERATIONS)) == pytest.approx(1.0)
    broken = centre.copy()
    broken[0, 5, 4:7] = 0  # a 3 px gap: 8 of the reference skeleton's 11 px are covered
    # precision (8 + 1) / (8 + 1) = 1, sensitivity (8 + 1) / (11 + 1) = 0.75
    expected = 2 * 1.0 * 0.75 / 1.75
    assert float(soft_cldice(truth, broken, weights, CLDICE_ITERATIONS)) == pytest.approx(expected)
    # As a loss: (1 - soft Dice) + focal + (1 - clDice), and its gradient reaches the gap.
    loss = DiceFocalClDiceLoss()
    p = np.clip(broken, 0.05, 0.95)
    assert float(loss(truth, p)) == pytest.approx(
        float(DiceFocalLoss()(truth, p))
        + 1
        - float(soft_cldice(truth, p, weights, CLDICE_ITERATIONS)),
        rel=1e-6,
    )
    import tensorflow as tf

    pred = tf.Variable(p)
    with tf.GradientTape() as tape:
        centreline = soft_cldice(truth, pred, weights, CLDICE_ITERATIONS)
    gradient = tape.gradient(centreline, pred).numpy()[0, 5, :, 0]
    assert (gradient[4:7] > 0).all()  # filling the gap raises the centreline Dice


# The distance target: channel 0 is Y / P, channel 1 a distance map and its prediction.
D = np.array([1.0, 0.5, 0.0, 0.0], np.float32).reshape(1, 2, 2, 1)
Q = np.array([0.8, 0.5, 0.1, 0.2], np.float32).reshape(1, 2, 2, 1)
SOFT_BCE = [
    -math.log(0.8),
    -(0.5 * math.log(0.5) + 0.5 * math.log(0.5)),
    -math.log(0.9),
    -math.log(0.8),
]


def test_distance_target_loss_is_the_foreground_loss_plus_the_map_cross_entropy():
    y, p = np.concatenate([Y, D], -1), np.concatenate([P, Q], -1)
    loss = DistanceTargetLoss(BinaryCrossentropy())
    assert float(loss(y, p)) == pytest.approx(np.mean(BCE) + np.mean(SOFT_BCE), rel=1e-5)
    weighted = sum(w * (b + m) for w, b, m in zip([1, 2, 0, 1], BCE, SOFT_BCE, strict=True)) / 4
    assert float(loss(y, p, sample_weight=W)) == pytest.approx(weighted, rel=1e-5)
    assert float(loss.call(y, p)) == pytest.approx(float(loss(y, p)), rel=1e-6)


def test_the_contact_channel_gets_the_foreground_loss():
    """Channel 2 (contacts) is a mask: the same loss as channel 0, added to the rest."""
    contact_y = np.array([0, 1, 1, 0], np.float32).reshape(1, 2, 2, 1)
    contact_p = np.array([0.2, 0.7, 0.4, 0.1], np.float32).reshape(1, 2, 2, 1)
    contact_bce = [-math.log(0.8), -math.log(0.7), -math.log(0.4), -math.log(0.9)]
    y = np.concatenate([Y, D, contact_y], -1)
    p = np.concatenate([P, Q, contact_p], -1)
    loss = get_loss(TrainConfig(loss="bce"), "contact")
    assert loss.mask_channels == (0, 2)  # from the registry: every channel but "distance"
    expected = np.mean(BCE) + np.mean(SOFT_BCE) + np.mean(contact_bce)
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    weights = [1, 2, 0, 1]
    terms = zip(weights, BCE, SOFT_BCE, contact_bce, strict=True)
    weighted = sum(w * (b + m + c) for w, b, m, c in terms) / 4
    assert float(loss(y, p, sample_weight=W)) == pytest.approx(weighted, rel=1e-5)
    assert float(loss.call(y, p)) == pytest.approx(float(loss(y, p)), rel=1e-6)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.mask_channels == (0, 2)
    assert float(restored(y, p)) == pytest.approx(expected, rel=1e-5)
    # The distance target's loss knows no third channel, whatever the tensor holds.
    assert get_loss(TrainConfig(loss="bce"), "distance").mask_channels == (0,)


def test_the_distance_target_wraps_the_named_loss_and_dice_scores_channel_0():
    loss = get_loss(TrainConfig(loss="dice-focal"), "distance")
    assert isinstance(loss, DistanceTargetLoss) and isinstance(loss.foreground, DiceFocalLoss)
    assert loss.foreground.gamma == 0.9
    assert type(get_loss(TrainConfig(loss="dice-focal"), "boundary")) is DiceFocalLoss
    y, p = np.concatenate([Y, D], -1), np.concatenate([P, Q], -1)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored.foreground, DiceFocalLoss)
    assert float(restored(y, p)) == pytest.approx(float(loss(y, p)), rel=1e-6)
    # Channel 0 > 0.5 is 1, 1, 0, 0 = the truth; an arg-max over channels would say 0, 1, 0, 0.
    dice = training_metrics(target="distance")[0]
    dice.update_state(y, np.concatenate([P, np.full_like(Q, 0.95)], -1))
    assert float(dice.result()) == pytest.approx(1.0)
    restored_metric = keras.metrics.deserialize(keras.metrics.serialize(dice))
    assert restored_metric.channel == 0


def test_border_weights_multiply_the_boundary_targets_categorical_loss():
    """--target boundary --border-weights: weighted-bce reads a one-hot 3-class target."""
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]].reshape(1, 2, 2, 3)
    p = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]], np.float32
    ).reshape(1, 2, 2, 3)
    true_p = [0.7, 0.6, 0.5, 0.3]
    weights = np.array([1.0, 2.0, 10.0, 1.0], np.float32).reshape(1, 2, 2)
    expected = sum(-w * math.log(q) for w, q in zip([1, 2, 10, 1], true_p, strict=True)) / 14
    got = float(WeightedBinaryCrossentropy()(y, p, sample_weight=weights))
    assert got == pytest.approx(expected, rel=1e-5)
