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


def level(block: str, channels: int, filters: int) -> keras.Model:
    """One U-Net level on its own, for checking what the block computes."""
    inputs = keras.Input((8, 8, channels))
    return keras.Model(inputs, blocks.conv_block(inputs, filters, "lvl", block=block))


def test_a_residual_level_adds_its_input_before_the_last_relu():
    """With the second convolution zeroed, BatchNorm at its initial statistics maps it to
    0, so a residual level returns ReLU(input) and a plain one returns 0."""
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype(np.float32)
    for block, expected in (("residual", np.maximum(x, 0)), ("plain", np.zeros_like(x))):
        model = level(block, channels=4, filters=4)
        conv2 = model.get_layer("lvl_conv2")
        conv2.kernel.assign(np.zeros(conv2.kernel.shape, np.float32))
        np.testing.assert_allclose(model(x, training=False), expected, atol=1e-6)


def test_a_residual_level_projects_its_input_only_where_the_filters_change():
    names = {layer.name for layer in level("residual", channels=3, filters=8).layers}
    assert {"lvl_shortcut", "lvl_shortcut_bn", "lvl_add"} <= names
    names = {layer.name for layer in level("residual", channels=8, filters=8).layers}
    assert "lvl_add" in names and "lvl_shortcut" not in names
    plain = {layer.name for layer in level("plain", channels=3, filters=8).layers}
    assert not any(name.endswith(("_add", "_shortcut")) for name in plain)


def test_fit_trains_and_records_a_residual_unet(tmp_path, capsys):
    from conftest import TINY_FIT, run_cli, write_folder_dataset

    from unet_tf.config import RunConfig

    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", data, "--block", "residual", "--epochs", "1", "--run-dir", run]
    code, _, err = run_cli(capsys, *args, *TINY_FIT)
    assert code == 0, err
    assert RunConfig.load(run / "config.yaml").model.block == "residual"
    model = keras.models.load_model(run / "model.keras")
    # depth 2: two encoder levels, the bottleneck and two decoder levels
    assert sum(layer.name.endswith("_add") for layer in model.layers) == 5
