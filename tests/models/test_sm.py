"""``--backbone sm:<name>``: segmentation-models' U-Net behind unet-tf's input layers."""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest

import unet_tf.training.fit as training
from unet_tf.config import ModelConfig, RunConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model, resolve_model_config
from unet_tf.models.sm import load_options


def model_config(backbone: str, **fields) -> ModelConfig:
    return ModelConfig(backbone=backbone, in_channels=1, encoder_weights="none", **fields)


def test_sm_unet_builds_freezes_and_trains_one_step(tmp_path):
    pytest.importorskip("segmentation_models")
    cfg = RunConfig()
    cfg.model = model_config("sm:resnet18", freeze=True)
    cfg.train.precision = "float32"
    cfg.train.loss = "focal"
    model = build_model(cfg.model, 64)
    assert model.output.dtype == "float32" and resolve_model_config(cfg.model, 64).depth == 5
    assert len(model.trainable_weights) < len(model.weights)
    training.compile_model(model, cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64, 64, 1)).astype(np.float32)
    y = (rng.random((2, 64, 64, 1)) > 0.5).astype(np.float32)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    odd = rng.integers(0, 256, (1, 50, 70, 1)).astype(np.float32)
    probs = np.asarray(model(odd))
    assert probs.shape == (1, 50, 70, 1)
    model.save(tmp_path / "sm.keras")
    reloaded = keras.saving.load_model(tmp_path / "sm.keras", **load_options("sm:resnet18"))
    np.testing.assert_allclose(np.asarray(reloaded(odd)), probs, atol=1e-6)
    assert reloaded.loss.name == "focal"


def test_sm_refuses_densenet_and_unknown_names():
    pytest.importorskip("segmentation_models")
    with pytest.raises(UserError, match=r"densenet121.*does not work on Keras 3"):
        build_model(model_config("sm:densenet121"), 64)
    with pytest.raises(UserError, match="unknown segmentation-models backbone 'resnet9'"):
        build_model(model_config("sm:resnet9"), 64)


def test_sm_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "segmentation_models", None)  # import now fails
    with pytest.raises(UserError, match=r"pip install unet-tf\[sm\]"):
        build_model(model_config("sm:resnet34"), 64)
