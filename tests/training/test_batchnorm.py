"""Re-estimating BatchNorm's moving statistics: exact averages, frozen layers untouched."""

from __future__ import annotations

import keras
import numpy as np

from unet_tf.training.batchnorm import RECALIBRATION_BATCHES, recalibrate_batchnorm


def bn_model(frozen_inner: bool = False) -> keras.Model:
    """Input -> BN -> a nested model holding a second BN (frozen or not)."""
    inner_in = keras.Input((4, 4, 1))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(inner_in))
    inner.trainable = not frozen_inner
    inputs = keras.Input((4, 4, 1))
    outer = keras.layers.BatchNormalization(name="outer_bn")(inputs)
    return keras.Model(inputs, inner(outer))


def constant_batches(values: list[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of two images: half the pixels at v - 1 and half at v + 1 (mean v, var 1)."""
    batches = []
    for v in values:
        x = np.full((2, 4, 4, 1), v, np.float32)
        x[0] -= 1
        x[1] += 1
        batches.append((x, np.zeros_like(x)))
    return batches


def stats(layer: keras.layers.BatchNormalization) -> tuple[float, float]:
    return float(layer.moving_mean.numpy()[0]), float(layer.moving_variance.numpy()[0])


def test_moving_statistics_become_the_average_over_the_batches():
    model = bn_model()
    outer = model.get_layer("outer_bn")
    inner = model.layers[-1].get_layer("inner_bn")
    assert stats(outer) == (0.0, 1.0)  # Keras' initial values
    assert recalibrate_batchnorm(model, constant_batches([2.0, 4.0, 9.0])) == 2
    mean, var = stats(outer)
    assert np.isclose(mean, 5.0, atol=1e-5)  # (2 + 4 + 9) / 3: nothing of the initial 0 left
    assert np.isclose(var, 1.0, rtol=1e-4)  # each batch's variance (Keras keeps the biased one)
    # the inner layer sees normalised inputs (mean 0, var ~1 per batch)
    assert np.isclose(stats(inner)[0], 0.0, atol=1e-4)
    assert outer.momentum == inner.momentum == 0.99  # restored for any further training
    # the same batches again give the same statistics (a resumed run may redo it)
    recalibrate_batchnorm(model, constant_batches([2.0, 4.0, 9.0]))
    assert np.isclose(stats(outer)[0], 5.0, atol=1e-5)


def test_only_the_first_batches_count_and_frozen_layers_keep_theirs():
    model = bn_model(frozen_inner=True)
    inner = model.layers[-1].get_layer("inner_bn")
    values = [1.0] * RECALIBRATION_BATCHES + [1000.0]
    assert recalibrate_batchnorm(model, constant_batches(values)) == 1
    assert np.isclose(stats(model.get_layer("outer_bn"))[0], 1.0, atol=1e-5)
    assert stats(inner) == (0.0, 1.0)  # a frozen encoder's statistics are its own


def test_a_model_without_trainable_batchnorm_is_left_alone():
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    before = [w.copy() for w in model.get_weights()]
    assert recalibrate_batchnorm(model, constant_batches([3.0])) == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
