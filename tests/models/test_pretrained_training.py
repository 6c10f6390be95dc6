"""Training pretrained encoders: frozen weights through a fit step, the two freeze phases."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from conftest import write_folder_dataset
from encoder_tester import weight_values

import unet_tf.training.fit as training
from unet_tf.cli import main
from unet_tf.config import ModelConfig, RunConfig
from unet_tf.errors import UserError
from unet_tf.export.exporter import export_model
from unet_tf.inference.predictor import load_predictor
from unet_tf.models import build_model
from unet_tf.training.phases import training_phases


def test_frozen_weights_are_bit_identical_after_a_fit_step():
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="vgg16", in_channels=1, encoder_weights="none", freeze=True)
    cfg.train.precision = "float32"
    model = build_model(cfg.model, 32)
    encoder = model.get_layer("encoder")
    before = weight_values(encoder.layers)
    decoder_before = np.array(model.get_layer("dec1_conv1").kernel)
    training.compile_model(model, cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 32, 32, 1)).astype(np.float32)
    y = (rng.random((2, 32, 32, 1)) > 0.5).astype(np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    for old, new in zip(before, weight_values(encoder.layers), strict=True):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(decoder_before, model.get_layer("dec1_conv1").kernel)


def test_freeze_epochs_phases():
    cfg = RunConfig()
    cfg.model.backbone = "vgg16"
    cfg.model.freeze_epochs = 3
    cfg.train.epochs = 10
    cfg.train.lr = 2e-3
    frozen, tuning = training_phases(cfg)
    assert (frozen.start, frozen.end, frozen.lr, frozen.unfreeze) == (0, 3, 2e-3, False)
    assert (tuning.start, tuning.end, tuning.unfreeze) == (3, 10, True)
    assert tuning.lr == pytest.approx(2e-4)
    cfg.train.fine_tune_lr = 5e-5
    assert training_phases(cfg)[1].lr == 5e-5
    cfg.model.freeze_epochs = 10
    with pytest.raises(UserError, match=r"freeze_epochs must be in \[0, 10\)"):
        cfg.validate()
    cfg.model.freeze_epochs, cfg.model.freeze = 3, True
    with pytest.raises(UserError, match="choose one"):
        cfg.validate()
    scratch = RunConfig()
    scratch.model.freeze = True
    with pytest.raises(UserError, match="need a pretrained --backbone"):
        scratch.validate()


def test_default_epochs_depend_on_the_backbone():
    cfg = RunConfig()
    assert cfg.epochs == 40
    cfg.model.backbone = "resnet50"
    assert cfg.epochs == 20


class Crash(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


@pytest.mark.slow
def test_freeze_epochs_via_cli_resumes_in_either_phase_then_reloads_and_exports(
    tmp_path, monkeypatch
):
    """Crash in the frozen phase, then in the fine-tuning phase: each epoch runs once."""
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", str(data), "--backbone", "vgg16", "--encoder-weights", "none"]
    args += ["--freeze-epochs", "2", "--epochs", "4", "--size", "40", "--batch-size", "2"]
    args += ["--steps-per-epoch", "1", "--precision", "float32", "--quiet"]
    args += ["--input-adapter", "conv", "--run-dir", str(run)]
    original = training.make_callbacks
    for crash_at in (0, 2):
        monkeypatch.setattr(
            training, "make_callbacks", lambda *a, c=crash_at, **k: [*original(*a, **k), Crash(c)]
        )
        with pytest.raises(RuntimeError, match="simulated crash"):
            main(args)
    monkeypatch.setattr(training, "make_callbacks", original)
    assert main(args) == 0
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [r["epoch"] for r in history] == ["1", "2", "3", "4"]  # numbered from 1
    # the step schedule over 4 epochs (x0.75 from epoch 2): from lr, then from lr / 10
    assert [float(r["learning_rate"]) for r in history] == pytest.approx(
        [1e-3, 1e-3, 7.5e-5, 5.625e-5]
    )
    assert not (run / "checkpoints" / "backup").exists()
    saved = RunConfig.load(run / "config.yaml")
    assert (saved.model.freeze_epochs, saved.model.depth, saved.model.input_adapter) == (
        2,
        5,
        "conv",
    )
    predictor = load_predictor(run)
    image = np.random.default_rng(0).integers(0, 256, (90, 77, 1)).astype(np.uint8)
    assert predictor.predict(image).shape == (90, 77, 1)
    assert export_model(predictor, "savedmodel", tmp_path / "export").max_difference < 1e-3


def test_fit_plans_around_a_pretrained_encoder(tmp_path):
    """The brief's ``fit --backbone vgg16 --freeze`` without ``--size``: the plan sizes the
    input and the batch but leaves the encoder its levels, which it would refuse to change."""
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", str(data), "--backbone", "vgg16", "--freeze"]
    args += ["--encoder-weights", "none", "--batch-size", "1", "--epochs", "1"]
    args += ["--steps-per-epoch", "1", "--quiet", "--run-dir", str(run)]
    assert main(args) == 0
    saved = RunConfig.load(run / "config.yaml")
    assert (saved.data.size, saved.model.depth, saved.model.backbone) == (256, 5, "vgg16")
    assert saved.plan["reasons"]["depth"] == "the vgg16 encoder's own levels"
