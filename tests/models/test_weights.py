"""Encoder weight settings: offline downloads, missing and mismatched files."""

from __future__ import annotations

import pytest
from conftest import shared_path, write_folder_dataset

from unet_tf.cli import main
from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model, resolve_model_config
from unet_tf.models.encoders import ENCODERS
from unet_tf.models.encoders.weights import keras_cache_path

RESNET50 = "resnet50_imagenet_notop.h5"


def model_config(backbone: str, encoder_weights: str) -> ModelConfig:
    return ModelConfig(backbone=backbone, in_channels=1, encoder_weights=encoder_weights)


def test_offline_imagenet_is_one_line_naming_the_file(monkeypatch):
    spec = ENCODERS.get("vgg16")
    if keras_cache_path(spec.weights_file).exists():
        pytest.skip("the ImageNet file is cached here, so nothing is downloaded")
    for var in ("https_proxy", "HTTPS_PROXY"):  # a closed port: offline wherever this runs
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(UserError) as info:
        build_model(model_config("vgg16", "imagenet"), 64)
    message = str(info.value)
    assert "\n" not in message
    assert "no ImageNet weights could be fetched for vgg16" in message
    assert spec.weights_file in message and "--encoder-weights PATH" in message


def test_missing_or_wrong_weights_file(tmp_path):
    missing = model_config("vgg16", str(tmp_path / "nope.h5"))
    for resolve_or_build in (resolve_model_config, build_model):
        with pytest.raises(UserError, match="encoder weights file not found"):
            resolve_or_build(missing, 64)
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(UserError, match=r"must be a Keras \.h5 file such as vgg16_weights"):
        resolve_model_config(model_config("vgg16", str(tmp_path / "weights.npz")), 64)
    wrong = shared_path("weights", RESNET50)
    with pytest.raises(UserError, match=f"cannot load {wrong} into the vgg16 encoder"):
        build_model(model_config("vgg16", str(wrong)), 64)


def test_offline_cli_error_exits_2(tmp_path, monkeypatch, capsys):
    if keras_cache_path(ENCODERS.get("resnet50").weights_file).exists():
        pytest.skip("the ImageNet file is cached here, so nothing is downloaded")
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    data = write_folder_dataset(tmp_path / "data", n=3, size=64)
    args = ["fit", "--data", str(data), "--backbone", "resnet50", "--size", "64"]
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: no ImageNet weights")
