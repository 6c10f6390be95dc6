"""ONNX and LiteRT exports: each reloaded in its own runtime and compared with Keras."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from unet_tf.cli.main import main
from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.export.exporter import export_model, float32_copy
from unet_tf.inference.predictor import InferenceOptions, Predictor, load_predictor
from unet_tf.inference.tiling import predict_tiled
from unet_tf.models.unet import build_unet


def needs_onnx():
    for module in ("onnxruntime", "tf2onnx", "onnx"):
        pytest.importorskip(module, reason=f"ONNX export needs {module}: pip install .[export]")


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory) -> Path:
    """A run directory with an (untrained) U-Net built in mixed_bfloat16, as fit makes here."""
    run = tmp_path_factory.mktemp("export") / "run"
    run.mkdir()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(1, 1, depth=2, base_filters=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.save(run / "model.keras")
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.model.base_filters = 1, 2, 4
    cfg.data.size = 64
    cfg.save(run / "config.yaml")
    return run


def test_float32_copy_keeps_weights_and_drops_bfloat16(bf16_run):
    model = load_predictor(bf16_run).network
    copy = float32_copy(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    x = np.random.default_rng(0).random((1, 64, 64, 1)).astype(np.float32) * 255
    assert 0 < np.abs(copy(x).numpy() - model(x).numpy()).max() < 2e-2
    assert float32_copy(copy) is copy


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("litert", ".tflite")])
def test_export_reloads_in_its_runtime_and_matches_keras(bf16_run, tmp_path, fmt, suffix):
    if fmt == "onnx":
        needs_onnx()
    out = tmp_path / f"model{suffix}"
    result = export_model(load_predictor(bf16_run), fmt, out)
    assert out.is_file() and (tmp_path / "model.unet_tf.yaml").is_file()
    assert result.max_difference < 1e-4
    assert any("mixed precision" in note for note in result.notes)
    assert not any("fixed input size" in note for note in result.notes)  # dynamic shapes
    exported = load_predictor(out, InferenceOptions(tile=0))
    reference = Predictor(float32_copy(load_predictor(bf16_run).network), exported.cfg)
    image = np.random.default_rng(1).integers(0, 256, (77, 101)).astype(np.uint8)
    for options in (InferenceOptions(tile=0), InferenceOptions(tile=32), InferenceOptions()):
        got = load_predictor(out, options).predict(image)
        expected = Predictor(reference.network, reference.cfg, options).predict(image)
        np.testing.assert_allclose(got, expected, atol=1e-4)
    with pytest.raises(UserError, match="already exists"):
        export_model(load_predictor(bf16_run), fmt, out)
    with pytest.raises(UserError, match=f"must end in {suffix}"):
        export_model(load_predictor(bf16_run), fmt, tmp_path / "model.bin")
    with pytest.raises(UserError, match="already an export"):
        export_model(exported, fmt, tmp_path / f"again{suffix}")


def upsampling_net() -> keras.Model:
    """UpSampling2D + Concatenate: the LiteRT converter loses the channel count of the
    concatenation with a dynamic size and falls back to TensorFlow ops it cannot run."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = layers.Conv2D(8, 3, padding="same", activation="relu")(layers.MaxPooling2D()(a))
    x = layers.Concatenate()([layers.UpSampling2D()(b), a])
    return keras.Model(inputs, layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x))


def test_litert_falls_back_to_a_fixed_size_and_predict_tiles_at_it(tmp_path):
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


def test_cli_exports_onnx_and_predicts_and_evaluates_with_it(bf16_run, tmp_path, capsys):
    needs_onnx()
    from conftest import write_folder_dataset

    data = write_folder_dataset(tmp_path / "data", n=2)
    out = tmp_path / "m.onnx"
    assert main(["export", str(bf16_run), "--format", "onnx", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "reloaded with onnxruntime" in text and "max |difference|" in text
    assert main(["predict", str(out), str(data / "images"), "--out", str(tmp_path / "p")]) == 0
    mask = np.array(Image.open(tmp_path / "p" / "img 00_mask.png"))
    assert mask.shape == (64, 64)
    assert main(["evaluate", str(out), "--data", str(data)]) == 0
    assert "mean" in capsys.readouterr().out
