"""LiteRT (``.tflite``) files: a network the converter mangles falls back to a fixed size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from export_tester import ExportFormatTester
from keras import layers

from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.export.exporter import export_model
from unet_tf.inference.predictor import InferenceOptions, Predictor, load_predictor
from unet_tf.inference.tiling import predict_tiled


def upsampling_net() -> keras.Model:
    """UpSampling2D + Concatenate: the LiteRT converter loses the channel count of the
    concatenation with a dynamic size and falls back to TensorFlow ops it cannot run."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = layers.Conv2D(8, 3, padding="same", activation="relu")(layers.MaxPooling2D()(a))
    x = layers.Concatenate()([layers.UpSampling2D()(b), a])
    return keras.Model(inputs, layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x))


class TestLiteRT(ExportFormatTester):
    fmt = "litert"

    def test_falls_back_to_a_fixed_size_and_predict_tiles_at_it(self, tmp_path):
        cfg = RunConfig()
        cfg.model.in_channels, cfg.model.depth, cfg.data.patch = 1, 1, 32
        model = upsampling_net()
        out = tmp_path / "fixed.tflite"
        result = export_model(Predictor(model, cfg), "litert", out)
        assert result.max_difference < 1e-4
        assert any("fixed input size 32x32 px" in note for note in result.notes)
        exported = load_predictor(out)
        assert exported.fixed_size == 32 and exported.tile == 32
        forward = Predictor(model, cfg).forward
        for shape in ((50, 70), (20, 24)):  # larger than a tile, and smaller (one padded tile)
            image = np.random.default_rng(2).random(shape).astype(np.float32)
            expected = predict_tiled(forward, image[..., None], 32)
            np.testing.assert_allclose(exported.predict(image), expected, atol=1e-5)
        with pytest.raises(UserError, match="only takes 32 px inputs"):
            load_predictor(out, InferenceOptions(tile=64))
