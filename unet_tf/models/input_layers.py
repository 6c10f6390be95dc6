"""From raw images to what an ImageNet encoder expects, inside the network.

An exported pretrained U-Net must take the same raw 8-bit, 16-bit or float images
as the scratch U-Net, so intensity mapping, channel adaptation and the encoder's
own preprocessing are layers of the model rather than a step users must repeat:

    raw image -> ByteRange -> 3 channels (repeat grey, or a learnable 1x1 conv)
              -> PixelAffine (the encoder's preprocess_input) -> encoder

``encoder_input`` wires these; the layers are registered so ``.keras`` files reload.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from unet_tf.config import INPUT_ADAPTERS
from unet_tf.errors import UserError

PACKAGE = "unet_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ByteRange(keras.layers.Layer):
    """Map each image's intensities to the 0-255 range ImageNet encoders were trained on.

    - values already within [0, 255] with a maximum above 1 (8-bit data, the usual
      case) pass unchanged, so RGB photographs reach the encoder exactly as ImageNet
      images did;
    - values within [0, 1] (float images) are multiplied by 255;
    - anything else (16-bit microscopy, negative floats) is stretched per image from
      its minimum to its maximum. A fixed /257 would leave the typical 12-bit camera
      image in a 16-bit container nearly black; per-image stretching, like the
      scratch U-Net's per-image standardisation, also ignores a microscope's gain.

    The rule looks at all channels of an image together, so colour balance survives.
    Patches of a 16-bit image are stretched by their own range, which differs a
    little from stretching the whole image at inference.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, x):
        x = tf.cast(x, tf.float32)
        lo = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
        hi = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
        stretched = (x - lo) * 255.0 / tf.maximum(hi - lo, 1e-6)
        unit = (lo >= 0.0) & (hi <= 1.0)
        byte = (lo >= 0.0) & (hi <= 255.0)
        return tf.where(unit, x * 255.0, tf.where(byte, x, stretched))


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelAffine(keras.layers.Layer):
    """A fixed per-pixel affine map of the channels: ``y = x @ matrix + bias``.

    Every ImageNet ``preprocess_input`` (caffe: RGB to BGR minus the mean; tf: to
    [-1, 1]; torch: mean and std) is such a map, so one serializable layer holds any
    of them exactly, with no Python function to pickle.
    """

    def __init__(self, matrix: list[list[float]], bias: list[float], **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.matrix = [list(map(float, row)) for row in matrix]
        self.bias = list(map(float, bias))

    def call(self, x):
        matrix = tf.constant(self.matrix, tf.float32)
        return tf.tensordot(tf.cast(x, tf.float32), matrix, axes=1) + tf.constant(self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.bias))

    def get_config(self):
        return {**super().get_config(), "matrix": self.matrix, "bias": self.bias}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Pad height and width up to a multiple of ``multiple`` by mirroring the border.

    For decoders that concatenate without resizing (segmentation-models), which need
    sides divisible by 32. The padding is split evenly, so a centre crop
    (``MatchSize('crop')``) against the input undoes it.
    """

    def __init__(self, multiple: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.multiple = multiple

    def call(self, x):
        size = tf.shape(x)[1:3]
        missing = (-size) % self.multiple
        before = missing // 2
        paddings = [
            [0, 0],
            [before[0], missing[0] - before[0]],
            [before[1], missing[1] - before[1]],
        ]
        return tf.pad(x, [*paddings, [0, 0]], mode="SYMMETRIC")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


def affine_of(preprocess: Callable[[np.ndarray], np.ndarray]) -> tuple[list, list]:
    """The (matrix, bias) of a per-pixel affine ``preprocess_input``, found by probing it.

    Feeding zero and the three unit colours reads off the bias and the matrix; a
    random image then checks that the function really is affine.
    """
    probe = np.zeros((4, 1, 1, 3), np.float32)
    for i in range(3):
        probe[i + 1, 0, 0, i] = 100.0
    out = np.asarray(preprocess(probe.copy()), np.float64).reshape(4, 3)
    bias = out[0]
    matrix = (out[1:] - bias) / 100.0
    check = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 3)).astype(np.float32)
    expected = np.asarray(preprocess(check.copy()), np.float64)
    if not np.allclose(check @ matrix + bias, expected, atol=1e-3):
        raise ValueError("preprocess_input is not a per-pixel affine map")
    return matrix.tolist(), bias.tolist()


def adapt_channels(x, in_channels: int, adapter: str, encoder: str):
    """Bring ``in_channels`` to the 3 an ImageNet encoder takes.

    'repeat' copies a grey channel three times (the encoder then sees a grey photo,
    which its filters handle well). 'conv' is a learnable 1x1 convolution, started
    as that repetition for grey, as the identity for RGB and as the channel mean
    otherwise, so training begins from what the pretrained filters expect.
    """
    if adapter not in INPUT_ADAPTERS:
        raise UserError(
            f"unknown input adapter {adapter!r}; choose one of {', '.join(INPUT_ADAPTERS)}"
        )
    if adapter == "conv":
        conv = layers.Conv2D(3, 1, dtype="float32", name="channel_adapter")
        y = conv(x)
        kernel = np.eye(3) if in_channels == 3 else np.full((in_channels, 3), 1.0 / in_channels)
        conv.set_weights([kernel.reshape(1, 1, in_channels, 3), np.zeros(3)])
        return y
    if in_channels == 3:
        return x
    if in_channels == 1:
        return layers.Concatenate(name="grey_to_rgb", dtype="float32")([x, x, x])
    raise UserError(
        f"the {encoder} encoder takes 1 (grey) or 3 (RGB) channels, but the images have "
        f"{in_channels}; pass --input-adapter conv to learn a 1x1 mapping to 3 channels"
    )


def encoder_input(
    inputs, in_channels: int, adapter: str, preprocess: Callable, encoder: str
) -> keras.KerasTensor:
    """Raw images to the preprocessed 3-channel tensor an ImageNet encoder expects."""
    x = ByteRange(name="byte_range")(inputs)
    x = adapt_channels(x, in_channels, adapter, encoder)
    matrix, bias = affine_of(preprocess)
    return PixelAffine(matrix, bias, name="encoder_preprocess")(x)
