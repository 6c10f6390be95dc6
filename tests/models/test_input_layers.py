"""The layers between raw images and an ImageNet encoder: range, channels, preprocessing."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from unet_tf.errors import UserError
from unet_tf.models.input_layers import ByteRange, PixelAffine, adapt_channels, affine_of


def test_byte_range_keeps_8bit_scales_unit_floats_and_stretches_16bit():
    img8 = np.array([10.0, 200.0, 255.0, 3.0], np.float32).reshape(1, 2, 2, 1)
    unit = np.array([0.0, 0.5, 1.0, 0.25], np.float32).reshape(1, 2, 2, 1)
    img16 = np.array([1000.0, 3000.0, 5000.0, 2000.0], np.float32).reshape(1, 2, 2, 1)
    out = ByteRange()(np.concatenate([img8, unit, img16])).numpy().reshape(3, 4)
    np.testing.assert_allclose(out[0], [10, 200, 255, 3])
    np.testing.assert_allclose(out[1], [0, 127.5, 255, 63.75])
    np.testing.assert_allclose(out[2], [0, 127.5, 255, 63.75], rtol=1e-6)


@pytest.mark.parametrize(
    "module", [keras.applications.vgg16, keras.applications.inception_resnet_v2]
)
def test_pixel_affine_equals_keras_preprocess_input(module):
    """caffe (RGB->BGR minus the mean) and tf ([-1, 1]) modes, exactly as Keras does them."""
    matrix, bias = affine_of(module.preprocess_input)
    rgb = np.random.default_rng(1).uniform(0, 255, (2, 5, 7, 3)).astype(np.float32)
    got = PixelAffine(matrix, bias)(rgb).numpy()
    np.testing.assert_allclose(got, module.preprocess_input(rgb.copy()), atol=1e-4)


def test_conv_adapter_starts_as_repeat_and_other_channel_counts_need_it():
    grey = keras.Input((None, None, 1))
    image = np.random.default_rng(2).uniform(0, 255, (1, 8, 8, 1)).astype(np.float32)
    repeat = keras.Model(grey, adapt_channels(grey, 1, "repeat", "vgg16"))
    conv = keras.Model(grey, adapt_channels(grey, 1, "conv", "vgg16"))
    np.testing.assert_allclose(conv(image), repeat(image), rtol=1e-6)
    np.testing.assert_allclose(repeat(image)[..., 2], image[..., 0])
    two = keras.Input((None, None, 2))
    with pytest.raises(UserError, match=r"takes 1 .* or 3 .* channels.*--input-adapter conv"):
        adapt_channels(two, 2, "repeat", "vgg16")
    assert keras.Model(two, adapt_channels(two, 2, "conv", "vgg16")).output_shape[-1] == 3
