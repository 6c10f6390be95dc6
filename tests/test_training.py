"""Training: a model that learns, the LR schedule, and resuming an interrupted run."""

from __future__ import annotations

import copy
import csv

import keras
import numpy as np
import pytest
from conftest import write_folder_dataset

import unet_tf.training as training
from unet_tf.callbacks import step_lr
from unet_tf.errors import UserError
from unet_tf.inference import load_predictor


def read_history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_step_schedule_by_hand():
    lrs = [step_lr(1e-3, e, 8) for e in range(8)]
    assert lrs == pytest.approx([1e-3] * 4 + [7.5e-4] * 2 + [5.625e-4] * 2)


@pytest.mark.slow
def test_unet_learns_disks_and_follows_the_schedule(tmp_path, tiny_config):
    data = write_folder_dataset(tmp_path / "data", n=10, size=64, seed=3)
    cfg = tiny_config(data, epochs=8, batch_size=4)
    cfg.model.base_filters = 8
    cfg.data.steps_per_epoch = 8
    cfg.data.val_split = 0.2
    result = training.fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    history = read_history(result.run_dir)
    assert [float(r["learning_rate"]) for r in history] == pytest.approx(
        [1e-3] * 4 + [7.5e-4] * 2 + [5.625e-4] * 2
    )
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    assert result.metrics["validation"]["mean"]["dice"] > 0.85
    assert cfg.data.val_names and len(cfg.data.val_names) == 2


class Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated crash")


def test_interrupted_run_resumes_from_its_last_epoch(tmp_path, tiny_config, monkeypatch):
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    cfg = tiny_config(data, epochs=4)
    run_dir = tmp_path / "run"
    original = training.make_callbacks
    monkeypatch.setattr(training, "make_callbacks", lambda *a, **k: [*original(*a, **k), Crash()])
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    assert not (run_dir / "metrics.json").exists()
    assert [r["epoch"] for r in read_history(run_dir)] == ["0", "1"]

    monkeypatch.setattr(training, "make_callbacks", original)
    result = training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    assert result.resumed
    assert [r["epoch"] for r in read_history(run_dir)] == ["0", "1", "2", "3"]
    assert (run_dir / "metrics.json").exists()


def test_resume_with_other_settings_is_refused(tmp_path, tiny_config):
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = tiny_config(data)
    cfg.save(run_dir / "config.yaml")
    other = tiny_config(data, lr=0.1)
    with pytest.raises(UserError, match=r"unfinished run with other settings \(train.lr"):
        training.fit(other, run_dir, verbose=0, log=lambda _: None)


def test_patch_trained_model_rejects_too_small_images(tmp_path, tiny_config):
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    cfg = tiny_config(data, epochs=1)
    cfg.data.patch = 32
    training.fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    predictor = load_predictor(tmp_path / "run")
    assert predictor.predict(np.zeros((40, 50), np.uint8)).shape == (40, 50, 1)
    with pytest.raises(UserError, match=r"tiny.png is 5x6 px, smaller than the 8 px"):
        predictor.predict(np.zeros((6, 5), np.uint8), "tiny.png")
