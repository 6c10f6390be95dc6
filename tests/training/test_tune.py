"""``unet-tf tune``: a real two-trial KerasTuner search that resumes and picks the best run."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from conftest import write_folder_dataset

import unet_tf
from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.training.tune import SearchSpace, trial_config, tune

pytest.importorskip("keras_tuner", reason="unet-tf tune needs keras-tuner (the [tune] extra)")

TINY_SPACE = SearchSpace(
    losses=("dice-focal", "bce"),
    batch_sizes=(2,),
    base_filters=(4,),
    inputs=("resize",),
    sides=(64,),
    augmentations=("light",),
    blocks=("residual",),  # not the defaults, so the trials show the space reached fit
    attention=("on",),
)


def test_trial_values_become_a_config_without_changing_the_base():
    base = RunConfig()
    values = {
        "lr": 3e-4, "loss": "focal-logdice", "focal_gamma": 1.5, "logdice_weight": 0.7,
        "batch_size": 8, "base_filters": 16, "backbone": "none", "freeze": True,
        "input": "patch", "side": 128, "augment": "strong",
    }  # fmt: skip
    cfg = trial_config(base, values)
    assert (cfg.data.patch, cfg.train.batch_size, cfg.train.lr) == (128, 8, 3e-4)
    assert cfg.train.logdice_weight == 0.7 and cfg.train.focal_gamma == 1.5
    assert not cfg.model.freeze  # freezing needs a pretrained backbone
    assert "elastic" in cfg.data.augment and base.data.patch is None and base.train.lr == 1e-3
    assert cfg.model.block == "plain"  # a search begun without blocks keeps the base's
    assert trial_config(base, {**values, "block": "residual"}).model.block == "residual"
    assert not cfg.model.attention  # nor gates
    assert trial_config(base, {**values, "attention": "on"}).model.attention
    # segmentation-models' decoder has neither (fit refuses them), so such a trial drops them
    sm = {**values, "backbone": "sm:resnet34", "block": "residual", "attention": "on"}
    trial = trial_config(base, sm)
    assert (trial.model.block, trial.model.attention) == ("plain", False)
    trial.validate()
    # A base planned for the scratch U-Net has a depth, which an encoder would refuse.
    planned = replace(base, model=replace(base.model, depth=3))
    assert trial_config(planned, {**values, "backbone": "vgg16"}).model.depth is None
    assert trial_config(planned, values).model.depth == 3


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (SearchSpace(blocks=("dense",)), r"--blocks dense: choose from plain, residual"),
        (SearchSpace(attention=("yes",)), r"--attention yes: choose from off, on"),
    ],
)
def test_an_unknown_block_or_gate_is_refused_before_any_trial(
    tmp_path, tiny_config, space, message
):
    with pytest.raises(UserError, match=message):
        tune(tiny_config(tmp_path), tmp_path / "run", 1, space=space)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_two_trials_write_runs_a_table_a_plot_and_best_yaml_and_resume(tmp_path, tiny_config):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    base = tiny_config(data, epochs=1)
    run = tmp_path / "search"
    # through the public API (the same search as ``unet-tf tune``), then resumed below
    result = unet_tf.tune(data, run, max_trials=2, tuner="random", space=TINY_SPACE, config=base)
    assert len(result.trials) == 2
    for row in result.trials:  # every trial is an ordinary, finished run directory
        assert (run / "trials" / row["trial"] / "metrics.json").is_file()
        trained = RunConfig.load(run / "trials" / row["trial"] / "config.yaml")
        assert trained.model.block == row["block"]  # the level the tuner chose trained
        assert trained.model.attention and row["attention"] == "on"
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert [r["trial"] for r in rows] == [t["trial"] for t in result.trials]
    best = max(result.trials, key=lambda t: t["val_dice"])
    assert result.best == best
    saved = RunConfig.load(run / "best.yaml")
    assert saved.train.loss == best["loss"] and saved.data.size == 64
    assert (run / "tune.png").stat().st_size > 1000

    again = tune(base, run, max_trials=2, tuner="random", space=TINY_SPACE, log=lambda _: None)
    assert [t["trial"] for t in again.trials] == [t["trial"] for t in result.trials]


def test_tune_needs_validation_images(tmp_path, tiny_config):
    base = tiny_config(tmp_path)
    base.data.val_split = 0.0
    with pytest.raises(UserError, match="validation"):
        tune(base, tmp_path / "run", max_trials=1, tuner="random")


def test_the_bayesian_tuner_without_scikit_learn_is_one_line(tmp_path, tiny_config, monkeypatch):
    """KerasTuner's Bayesian oracle imports scikit-learn only when it is built: without
    it the default tuner crashed with an ImportError traceback."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    with pytest.raises(UserError, match=r"--tuner bayesian needs scikit-learn.*--tuner random"):
        tune(tiny_config(tmp_path), tmp_path / "run", max_trials=1, tuner="bayesian")
