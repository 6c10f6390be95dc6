"""Training: a model that learns, the LR schedule, and resuming an interrupted run."""

from __future__ import annotations

import copy
import csv
import errno
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from conftest import write_folder_dataset

import unet_tf.training.checkpoints as checkpoints
import unet_tf.training.fit as training
from unet_tf.errors import UserError
from unet_tf.inference.predictor import load_predictor
from unet_tf.rundir import read_history as read_columns
from unet_tf.training.callbacks import centre_crop, step_lr
from unet_tf.training.checkpoints import Backup, Restored, restore_backup


def read_history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_compile_builds_the_optimizer_so_the_training_step_is_traced_once(tiny_config):
    """Keras alone builds the optimizer inside the first step, which then traces twice."""
    from unet_tf.models import build_model

    cfg = tiny_config()
    cfg.data.target, cfg.model.in_channels = "binary", 1
    model = build_model(cfg.model, 64)
    training.compile_model(model, cfg)
    assert model.optimizer.built
    traced = []
    step = model.train_step
    model.train_step = lambda data: traced.append(1) or step(data)  # runs once per trace
    x = np.random.default_rng(0).random((4, 64, 64, 1)).astype(np.float32)
    model.fit(x, (x > 0.5).astype(np.float32), batch_size=2, epochs=2, verbose=0)
    assert len(traced) == 1


def test_step_schedule_by_hand():
    lrs = [step_lr(1e-3, e, 8) for e in range(8)]
    assert lrs == pytest.approx([1e-3] * 4 + [7.5e-4] * 2 + [5.625e-4] * 2)


def test_tensorboard_images_show_the_centre_of_large_images():
    batch = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7, 1)
    crop = centre_crop(batch, 3)
    assert crop.shape == (2, 3, 3, 1)
    np.testing.assert_array_equal(crop[0, :, :, 0], [[9, 10, 11], [16, 17, 18], [23, 24, 25]])
    assert centre_crop(batch, 6).shape == (2, 5, 6, 1)  # a side already within stays whole
    assert centre_crop(batch, 8).shape == batch.shape


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
    assert result.config.data.val_names and len(result.config.data.val_names) == 2


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
    assert [r["epoch"] for r in read_history(run_dir)] == ["1", "2"]  # numbered from 1
    last = run_dir / "checkpoints" / "last.weights.h5"
    assert not last.exists()  # written once, when training ends: until then the backup holds it

    monkeypatch.setattr(training, "make_callbacks", original)
    result = training.fit(copy.deepcopy(cfg), run_dir, verbose=0, log=lambda _: None)
    assert result.resumed
    assert [r["epoch"] for r in read_history(run_dir)] == ["1", "2", "3", "4"]
    assert (run_dir / "metrics.json").exists()
    tiny_model(tiny_config).load_weights(last)  # the final weights, complete
    # time to accuracy reads the training seconds, counted on across the resume
    seconds = [float(r["seconds"]) for r in read_history(run_dir)]
    assert seconds[0] > 0 and seconds == sorted(set(seconds))
    cpu = [float(r["cpu_seconds"]) for r in read_history(run_dir)]
    assert cpu[0] > 0 and cpu == sorted(cpu)
    # metrics.json counts both sessions, not only the one that finished the run
    assert result.metrics["train_seconds"] >= seconds[-1] > seconds[1]
    assert result.metrics["train_cpu_seconds"] >= cpu[-1] > cpu[1]


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


def tiny_model(tiny_config):
    cfg = tiny_config()
    cfg.model.in_channels = 1
    return training.build_compiled_model(cfg)


def test_backup_slots_rotate_and_a_damaged_newest_falls_back(tmp_path, tiny_config, capsys):
    model = tiny_model(tiny_config)
    backup_dir = tmp_path / "backup"
    backup = Backup(backup_dir)
    backup.set_model(model)
    for epoch in range(3):
        backup.on_epoch_end(epoch)
    assert json.loads((backup_dir / "training_metadata.json").read_text()) == {
        "epoch": 3,
        "slot": "slot-0",
    }
    assert restore_backup(model, backup_dir) == Restored(3, "slot-0")
    (backup_dir / "slot-0" / "state.weights.h5").write_bytes(b"")
    assert restore_backup(model, backup_dir) == Restored(2, "slot-1")
    assert "cannot read the backup in" in capsys.readouterr().err
    # The next backup replaces the damaged slot, not the one training resumed from.
    resumed = Backup(backup_dir, Restored(2, "slot-1"))
    resumed.set_model(model)
    resumed.on_epoch_end(2)
    assert restore_backup(model, backup_dir) == Restored(3, "slot-0")
    for slot in ("slot-0", "slot-1"):
        (backup_dir / slot / "state.weights.h5").write_bytes(b"")
    with pytest.raises(UserError, match=r"no backup in .*backup can be read .*--overwrite"):
        restore_backup(model, backup_dir)


def test_an_older_versions_backup_resumes(tmp_path, tiny_config):
    """Runs interrupted before the slots existed hold Keras' BackupAndRestore files."""
    model = tiny_model(tiny_config)
    model.save_weights(tmp_path / "latest.weights.h5")
    (tmp_path / "training_metadata.json").write_text('{"epoch": 4, "batch": 0}')
    assert restore_backup(model, tmp_path) == Restored(4, None)
    assert restore_backup(model, tmp_path / "none") is None


def test_weights_are_written_only_when_the_disk_has_room(tmp_path, tiny_config, monkeypatch):
    """HDF5 segfaults when the disk fills under it; a clear ENOSPC comes first instead."""
    model = tiny_model(tiny_config)
    path = tmp_path / "last.weights.h5"
    checkpoints.save_weights(model, path)
    assert checkpoints.weights_file_bytes(model) > path.stat().st_size
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda _: SimpleNamespace(free=10**5))
    with pytest.raises(OSError) as info:
        checkpoints.save_weights(model, tmp_path / "more.weights.h5")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path)
    assert not (tmp_path / "more.weights.h5").exists()


def test_history_of_a_run_without_validation_reads_without_na(tmp_path):
    """Keras' CSVLogger wrote NA for validation scores a run without validation lacks."""
    history = tmp_path / "history.csv"
    history.write_text("epoch,dice,loss,val_dice,val_loss\n0,0.5,0.9,NA,NA\n1,0.7,0.8,NA,NA\n")
    columns = read_columns(history)
    assert sorted(columns) == ["dice", "epoch", "loss"]
    assert training.previous_best(history, "dice", before=1) == 0.5
    assert training.previous_best(history, "val_dice", before=2) is None
    assert training.best_epoch(history, "dice") == 2
