"""Small custom layers the U-Nets need, registered so ``.keras`` files reload alone.

They use TensorFlow ops directly because the spatial sizes are only known at run
time (models are built on ``Input((None, None, C))`` to serve any image size).
"""

from __future__ import annotations

import keras
import tensorflow as tf

PACKAGE = "unet_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PerImageStandardize(keras.layers.Layer):
    """Zero mean, unit variance per image and channel.

    Putting intensity normalisation inside the network means an exported model takes
    raw 8-bit, 16-bit or float images, and a microscope's gain does not matter.
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        x = tf.cast(x, tf.float32)
        mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) / tf.sqrt(var + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatchSize(keras.layers.Layer):
    """Bring ``x`` to the spatial size of ``reference`` by resize, crop or pad.

    With 'same' convolutions the decoder and its skip differ by at most a row or a
    column (odd sizes); this layer is where that difference is reconciled.
    """

    def __init__(self, mode: str = "resize", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("resize", "crop", "pad"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x, reference = inputs
        target = tf.shape(reference)[1:3]
        if self.mode == "resize":
            resized = tf.image.resize(x, target, method="bilinear")
            return tf.cast(resized, x.dtype)
        size = tf.shape(x)[1:3]
        if self.mode == "crop":
            offset = tf.maximum(size - target, 0) // 2
            crop = tf.minimum(size, target)
            return x[:, offset[0] : offset[0] + crop[0], offset[1] : offset[1] + crop[1], :]
        missing = tf.maximum(target - size, 0)
        before = missing // 2
        paddings = [
            [0, 0],
            [before[0], missing[0] - before[0]],
            [before[1], missing[1] - before[1]],
            [0, 0],
        ]
        padded = tf.pad(x, paddings)
        return padded[:, : target[0], : target[1], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
