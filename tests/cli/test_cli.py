"""The command line end to end at 64x64: fit, evaluate, predict, export, reload."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_FIT as TINY
from conftest import run_cli as run
from PIL import Image

from unet_tf.inference.predictor import load_predictor


def test_fit_writes_a_complete_run_dir(tiny_run):
    _, run_dir = tiny_run
    for name in ("config.yaml", "model.keras", "history.csv", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "checkpoints" / "last.weights.h5").is_file()
    assert any((run_dir / "logs").rglob("events.out.tfevents*"))
    history = (run_dir / "history.csv").read_text().splitlines()
    assert (
        history[0].startswith("epoch")
        and "val_dice" in history[0]
        and "learning_rate" in history[0]
    )
    assert len(history) == 3  # header + 2 epochs
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["validation"]["mean"]) == {"dice", "iou", "precision", "recall"}
    assert metrics["train_seconds"] > 0


def test_the_finished_model_holds_the_network_without_the_optimizer(tiny_run):
    """Resume reads checkpoints/, so model.keras keeps only what predicts (Adam's state
    would triple it); the last-epoch weights still carry the optimizer."""
    _, run_dir = tiny_run
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        assert not json.loads(archive.read("config.json")).get("compile_config")
        with archive.open("model.weights.h5") as weights, h5py.File(weights) as h5:
            assert "layers" in h5 and "optimizer" not in h5
    with h5py.File(run_dir / "checkpoints" / "last.weights.h5") as h5:
        assert "optimizer" in h5
    model = keras.saving.load_model(run_dir / "model.keras")  # after `import unet_tf`
    assert model.count_params() > 0 and getattr(model, "optimizer", None) is None


def test_refuses_to_overwrite_a_finished_run(tiny_run, capsys):
    data, run_dir = tiny_run
    before = (run_dir / "model.keras").read_bytes()
    code, _, err = run(capsys, "fit", "--data", data, "--run-dir", run_dir, *TINY)
    assert code == 2
    assert err.count("\n") == 1 and "already holds a finished run" in err
    assert (run_dir / "model.keras").read_bytes() == before


def test_evaluate_prints_table_and_json(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    out = tmp_path / "scores.json"
    args = ("evaluate", run_dir, "--data", data, "--subset", "all", "--json", out)
    code, text, _ = run(capsys, *args)  # the training folder: all of it, training images too
    assert code == 0
    assert "img 00" in text and "mean" in text
    scores = json.loads(out.read_text())
    assert len(scores["images"]) == 6
    assert set(scores["mean"]) == {"dice", "iou", "precision", "recall"}
    mean_dice = np.mean([im["dice"] for im in scores["images"]])
    assert scores["mean"]["dice"] == pytest.approx(mean_dice)
    code, _, err = run(capsys, "evaluate", run_dir, "--data", data, "--json", out)
    assert code == 2 and "already exists" in err


def test_predict_writes_mask_probability_and_overlay(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    out = tmp_path / "pred"
    code, text, _ = run(capsys, "predict", run_dir, data, "--out", out)
    assert code == 0 and "Dice" in text
    mask = np.array(Image.open(out / "img 00_mask.png"))
    prob = np.array(Image.open(out / "img 00_prob.png"))
    panel = np.array(Image.open(out / "img 00_overlay.png"))
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
    assert prob.dtype == np.uint16 and prob.shape == (64, 64)
    chosen = json.loads((run_dir / "metrics.json").read_text())["threshold"]  # --threshold auto
    assert ((prob > chosen * 65535) == (mask > 0)).mean() > 0.99
    assert panel.shape[1] > 4 * 64 and panel.shape[2] == 3  # four tiles side by side
    code, _, err = run(capsys, "predict", run_dir, data, "--out", out)
    assert code == 2 and "already exist" in err


def test_predict_single_file_without_truth(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    code, text, _ = run(
        capsys, "predict", run_dir, data / "images" / "img 03.png", "--out", tmp_path
    )
    assert code == 0 and "Dice" not in text
    assert (tmp_path / "img 03_overlay.png").is_file()


def test_export_round_trip_matches_keras(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    out = tmp_path / "export"
    code, text, _ = run(capsys, "export", run_dir, "--out", out)
    assert code == 0 and "max |difference|" in text
    keras_predictor = load_predictor(run_dir)
    loaded = tf.saved_model.load(str(out))
    image = np.array(Image.open(data / "images" / "img 01.png"))
    expected = keras_predictor.predict(image)
    for fn, x in ((loaded.serve, image.astype(np.float32)), (loaded.serve_uint8, image)):
        got = fn(tf.constant(x[None, ..., None]))[0].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)
    # The export is itself a model for evaluate, without the training code's run dir.
    code, text, _ = run(capsys, "evaluate", out, "--data", data)
    assert code == 0 and "mean" in text
    code, _, err = run(capsys, "export", run_dir, "--out", out)
    assert code == 2 and "already exists" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["fit", "--data", "/nonexistent/data"], "data not found"),
        (["fit", "--loss", "mse"], "Invalid value for '--loss'"),
        (["evaluate", "/nonexistent/run"], "model not found"),
        (["predict", "/nonexistent/run", "x.png", "--out", "o"], "model not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_channel_mismatch_and_too_small(tiny_run, tmp_path, capsys):
    _, run_dir = tiny_run
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "rgb.png")
    code, _, err = run(capsys, "predict", run_dir, tmp_path / "rgb.png", "--out", tmp_path / "o")
    assert code == 2 and "rgb.png has 3 channel(s) but the model was trained on 1" in err


def test_console_script_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "unet_tf.cli", "evaluate", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: model not found")
    assert "Traceback" not in result.stderr
