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


def gate(channels: int) -> keras.Model:
    """One attention gate on its own: (skip, decoder features) -> weighted skip."""
    skip, features = keras.Input((8, 8, channels)), keras.Input((8, 8, 6))
    return keras.Model([skip, features], blocks.attention_gate(skip, features, "dec"))


def test_an_attention_gate_weighs_each_pixel_of_the_skip_by_sigmoid_of_its_score():
    """With the score's 1x1 kernel zeroed every pixel scores its bias b, so the gate
    returns the skip times sigmoid(b): half at b = 0, three quarters at b = ln 3."""
    rng = np.random.default_rng(0)
    skip = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
    features = rng.normal(size=(2, 8, 8, 6)).astype(np.float32)
    model = gate(4)
    psi = model.get_layer("dec_att_psi")
    psi.kernel.assign(np.zeros(psi.kernel.shape, np.float32))
    for bias, weight in ((0.0, 0.5), (np.log(3.0), 0.75)):
        psi.bias.assign(np.full(psi.bias.shape, bias, np.float32))
        np.testing.assert_allclose(model([skip, features]), weight * skip, rtol=1e-5)


def test_an_attention_gate_has_one_weight_per_pixel_set_by_the_decoder_features():
    rng = np.random.default_rng(1)
    skip = rng.normal(size=(1, 8, 8, 4)).astype(np.float32)
    model = gate(4)
    weights = keras.Model(model.inputs, model.get_layer("dec_att_sigmoid").output)
    first = weights([skip, rng.normal(size=(1, 8, 8, 6)).astype(np.float32)]).numpy()
    second = weights([skip, rng.normal(size=(1, 8, 8, 6)).astype(np.float32)]).numpy()
    assert first.shape == (1, 8, 8, 1) and first.min() > 0 and first.max() < 1
    assert np.abs(first - second).max() > 1e-3  # other features, other weights
    assert first.std() > 1e-3  # pixels are weighed apart, not all alike


def test_attention_adds_exactly_the_gates_parameters_to_the_unet():
    """Per decoder level of f filters (its skip has f too): two 1x1 projections to f/2
    (f * f/2 weights each), their two BatchNorms (4 * f/2 each, half trainable) and a
    1x1 score with its bias (f/2 + 1)."""
    plain = build_unet(1, 1, depth=2, base_filters=4)
    gated = build_unet(1, 1, depth=2, base_filters=4, attention=True)
    expected = sum(2 * f * (f // 2) + 2 * 4 * (f // 2) + f // 2 + 1 for f in (4, 8))
    assert gated.count_params() - plain.count_params() == expected
    assert sum(layer.name.endswith("_attention") for layer in gated.layers) == 2


def test_fit_trains_and_records_an_attention_unet(tmp_path, capsys):
    from conftest import TINY_FIT, run_cli, write_folder_dataset

    from unet_tf.config import RunConfig

    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", data, "--attention", "--epochs", "1", "--run-dir", run]
    code, _, err = run_cli(capsys, *args, *TINY_FIT)
    assert code == 0, err
    assert RunConfig.load(run / "config.yaml").model.attention
    model = keras.models.load_model(run / "model.keras")
    assert sum(layer.name.endswith("_attention") for layer in model.layers) == 2
