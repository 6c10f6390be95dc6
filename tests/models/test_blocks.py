"""The U-Net level's BatchNorm: after a short run, inference mode predicts what training
mode does, so the per-epoch validation scores the network that was trained."""

from __future__ import annotations

import keras
import numpy as np

from unet_tf.models import blocks
from unet_tf.models.unet import build_unet


def inference_gap(momentum: float, monkeypatch) -> float:
    """The mean difference between training- and inference-mode probabilities of a
    small U-Net after 24 steps of learning a threshold."""
    monkeypatch.setattr(blocks, "BATCHNORM_MOMENTUM", momentum)
    keras.utils.set_random_seed(0)
    model = build_unet(1, 1, depth=1, base_filters=4)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 1)).astype(np.float32)
    y = (x > 128).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=12, verbose=0)
    training = model(x, training=True).numpy()
    inference = model(x, training=False).numpy()
    return float(np.mean(np.abs(training - inference)))


def test_every_batchnorm_of_the_unet_has_the_short_run_momentum():
    model = build_unet(1, 1, depth=2, base_filters=4)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 2 * 5  # two per level: two encoder levels, bottleneck, two decoders
    assert {layer.momentum for layer in norms} == {blocks.BATCHNORM_MOMENTUM}


def test_inference_mode_follows_training_after_a_short_run(monkeypatch):
    gap = inference_gap(blocks.BATCHNORM_MOMENTUM, monkeypatch)
    assert gap < 0.05  # measured: 0.030
    # Keras' default momentum leaves 79 % of the initial statistics after 24 steps
    assert inference_gap(0.99, monkeypatch) > 2 * gap  # measured: 0.106
