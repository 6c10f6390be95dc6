"""Overlap-tile prediction and test-time augmentation on real Keras networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from unet_tf.inference.tiling import (
    BLENDS,
    blend_window,
    mirror_indices,
    predict_tiled,
    tile_starts,
)
from unet_tf.inference.tta import VIEWS, apply_view, undo_view, with_tta


def constant_model(value: float, channels: int = 1, classes: int = 1) -> keras.Model:
    """A real Keras network whose output is ``value`` everywhere (zero kernel, fixed bias)."""
    inputs = keras.Input((None, None, channels))
    outputs = keras.layers.Conv2D(
        classes,
        3,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(value),
    )(inputs)
    return keras.Model(inputs, outputs)


def small_fcn(seed: int = 0) -> keras.Model:
    """Three 3x3 'same' convolutions: fully convolutional, receptive radius 3 px."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def keras_forward(model: keras.Model):
    return lambda batch: model(batch, training=False).numpy()


@pytest.mark.parametrize("size", [1, 2, 5, 17])
def test_mirror_indices_match_numpy_reflect_padding(size):
    row = np.arange(size)
    pad = 3 * size + 4
    expected = np.pad(row, pad, mode="reflect") if size > 1 else np.zeros(size + 2 * pad, int)
    np.testing.assert_array_equal(row[mirror_indices(-pad, size + 2 * pad, size)], expected)


def test_tiles_cover_the_image_with_at_most_the_requested_stride():
    starts = tile_starts(1000, 256, 192, 32)
    assert starts[0] == -32 and starts[-1] + 256 == 1000 + 32
    assert max(np.diff(starts)) <= 192
    assert tile_starts(100, 256, 192, 32) == [-78]  # one tile, centred on a small image


@pytest.mark.parametrize("blend", BLENDS)
@pytest.mark.parametrize("shape", [(300, 517), (40, 50), (256, 256), (257, 1)])
def test_tiling_a_constant_output_model_reproduces_it_exactly(blend, shape):
    model = constant_model(0.3, channels=3, classes=2)
    image = np.random.default_rng(0).integers(0, 255, (*shape, 3)).astype(np.uint8)
    probs = predict_tiled(keras_forward(model), image, 64, 0.25, blend, batch_size=3)
    assert probs.shape == (*shape, 2) and probs.dtype == np.float32
    np.testing.assert_array_equal(probs, np.full((*shape, 2), np.float32(0.3)))


def test_tiling_a_pixelwise_model_puts_every_pixel_back_in_place():
    image = np.random.default_rng(1).random((333, 210, 2)).astype(np.float32)
    probs = predict_tiled(lambda b: b * 2.0, image, 48, 0.5, "gaussian", batch_size=5)
    np.testing.assert_array_equal(probs, image * 2.0)


def test_tiled_and_whole_image_predictions_agree_on_a_fully_convolutional_model():
    model = small_fcn()
    image = np.random.default_rng(2).normal(0, 1, (200, 300, 1)).astype(np.float32)
    whole = model(image[None]).numpy()[0]
    tiled = predict_tiled(keras_forward(model), image, 64, 0.25, "gaussian", batch_size=4)
    # Within 3 px of the image border the whole-image pass sees zero padding and the
    # tiles see the mirrored image; everywhere else only tile seams can differ.
    inner = np.abs(tiled - whole)[3:-3, 3:-3]
    assert inner.max() < 2e-3 and inner.mean() < 1e-4
    hard = predict_tiled(keras_forward(model), image, 64, 0.25, "none", batch_size=4)
    assert np.abs(hard - whole)[3:-3, 3:-3].mean() > 10 * inner.mean()  # blending matters


def test_memory_is_bounded_by_the_tile_batch():
    seen = []

    def forward(batch):
        seen.append(batch.shape)
        return batch[..., :1] / 255.0

    image = np.zeros((2000, 3000, 3), np.uint8)
    probs = predict_tiled(forward, image, 256, 0.25, "gaussian", batch_size=4)
    assert probs.shape == (2000, 3000, 1)
    assert {s[1:] for s in seen} == {(256, 256, 3)} and max(s[0] for s in seen) == 4
    assert (
        sum(s[0] for s in seen) == 11 * 16
    )  # ceil((2000 + 64 - 256) / 192) + 1 rows, likewise 16 columns


@pytest.mark.slow
def test_a_10k_by_10k_image_is_tiled_in_bounded_batches():
    image = np.random.default_rng(3).integers(0, 256, (10_000, 10_000, 1), dtype=np.uint8)
    largest = []

    def forward(batch):
        largest.append(batch.shape[0])
        return batch / 255.0

    probs = predict_tiled(forward, image, 512, 0.125, "linear", batch_size=8)
    assert probs.shape == (10_000, 10_000, 1) and max(largest) == 8
    np.testing.assert_allclose(probs[::997, ::991, 0], image[::997, ::991, 0] / 255.0, atol=1e-6)


def test_blend_windows_are_positive_and_peak_in_the_centre():
    for blend in BLENDS:
        w = blend_window(64, 16, blend)
        assert (
            w.shape == (64, 64) and w.min() > 0 and w.max() == pytest.approx(w[31:33, 31:33].max())
        )
    assert blend_window(64, 16, "linear")[16:48, 16:48].min() == 1.0


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_tta_views_are_undone_exactly(mode):
    batch = np.random.default_rng(4).random((2, 8, 8, 3)).astype(np.float32)
    for turns, flip in VIEWS[mode]:
        np.testing.assert_array_equal(undo_view(apply_view(batch, turns, flip), turns, flip), batch)
    views = {apply_view(batch, t, f).tobytes() for t, f in VIEWS[mode]}
    assert len(views) == len(VIEWS[mode])  # every view is a different transform


def test_tta_averages_the_views_of_an_orientation_dependent_network():
    calls = []

    def forward(batch):  # cumulative sum along x: not invariant to flips
        calls.append(batch.shape)
        return np.cumsum(batch, axis=2)

    batch = np.random.default_rng(5).random((1, 6, 6, 1)).astype(np.float32)
    got = with_tta(forward, "flips")(batch)
    assert len(calls) == 4
    left_to_right = np.cumsum(batch, axis=2)
    right_to_left = np.cumsum(batch[:, :, ::-1], axis=2)[:, :, ::-1]
    np.testing.assert_allclose(got, (left_to_right + right_to_left) / 2, rtol=1e-6)
    calls.clear()
    with_tta(forward, "d4")(batch)
    assert len(calls) == 8
    assert with_tta(forward, "none") is forward


def test_tta_leaves_a_pixelwise_network_unchanged():
    batch = np.random.default_rng(6).random((3, 10, 14, 1)).astype(np.float32)
    np.testing.assert_allclose(with_tta(lambda b: b**2, "d4")(batch), batch**2, rtol=1e-6)
