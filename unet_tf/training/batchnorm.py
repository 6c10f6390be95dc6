"""Re-estimating BatchNorm's moving statistics after training.

Moving averages lag the weights: with Keras' default momentum of 0.99 they still hold
``0.99**n`` of their initial values after ``n`` steps (61 % after 50 steps, 5 % after
300), so a short run trained well in batch statistics and predicted badly in inference
mode. On the Table 1 grid's 50-step runs (docs/table1.md) a frozen-VGG16 U-Net scored
validation Dice 0.29 on U373 in inference mode and 0.85 once its statistics were
re-estimated from 8 training batches; a scratch U-Net on HeLa went from 0.86 to 0.91.
unet-tf's networks now use momentum 0.9 (``unet_tf.models.blocks``), which follows the
weights within about ten steps; the saved model still gets this exact re-estimate,
with its final weights, and so does a model built with another momentum.
The re-estimate is an exact average over the batches (momentum i / (i + 1) for the
i-th), as PyTorch's ``swa_utils.update_bn`` does, so it is the same however often it
is repeated on the same batches, and a resumed run may redo it.

Only trainable BatchNorm layers are re-estimated: a frozen encoder's run in inference
mode with the statistics they came with, even when called with ``training=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import keras
import numpy as np

RECALIBRATION_BATCHES = 8  # training batches averaged into the moving statistics


def trainable_batchnorms(layer: keras.layers.Layer) -> Iterator[keras.layers.BatchNormalization]:
    """Every trainable BatchNormalization in ``layer``, nested models included."""
    if not layer.trainable:
        return
    if isinstance(layer, keras.layers.BatchNormalization):
        yield layer
    for child in getattr(layer, "layers", ()):
        yield from trainable_batchnorms(child)


def recalibrate_batchnorm(model: keras.Model, batches: Iterable) -> int:
    """Set ``model``'s BatchNorm moving statistics to their average over ``batches``.

    ``batches`` yields input arrays or ``(inputs, targets[, weights])`` tuples, as a
    training ``tf.data`` pipeline does; the first :data:`RECALIBRATION_BATCHES` are used.
    Returns the number of BatchNorm layers re-estimated (0 leaves the model untouched).
    """
    layers = list(trainable_batchnorms(model))
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for i, batch in enumerate(batches):
            if i == RECALIBRATION_BATCHES:
                break
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = i / (i + 1)  # 0 for the first batch: the old values go
            model(np.asarray(inputs, np.float32), training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return len(layers)
