"""``fit`` plans by default: the plan's recipe, explicit settings on top, resume, --no-plan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from unet_tf.config import RunConfig
from unet_tf.planning.recipe import changed_settings, fit_config, setting_path

QUIET = {"log": lambda _: None}


def write_lines_dataset(root: Path, n: int = 6, size: int = 64) -> Path:
    """Thin vertical lines (2 px, ~9% of pixels): the plan trains on 64 px patches."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        for x in rng.choice(np.arange(4, size - 4, 8), 3, replace=False):
            mask[:, x : x + 2] = 255
        image = np.clip(60 + 0.5 * mask + rng.normal(0, 8, mask.shape), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


def lines_config(root: Path, **train) -> RunConfig:
    cfg = RunConfig()
    cfg.data.data = str(root)
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


def test_the_plan_is_used_without_a_size_and_explicit_settings_win(tmp_path):
    data = write_lines_dataset(tmp_path / "lines")
    cfg = lines_config(data, batch_size=4)
    planned = fit_config(cfg, {"data.data", "train.batch_size"}, **QUIET)
    # thin lines at 64 px: 64 px patches (capped by the image side), 16 per batch by the
    # rule, foreground 9.4% < 10%: a third of the patches centred on it; 2 px lines of
    # 64 px are ~13 px objects: ceil(log2 16) - 1 = 3 poolings; 6 images: elastic
    assert (planned.data.patch, planned.data.fg_prob, planned.model.depth) == (64, 0.33, 3)
    assert "elastic" in planned.data.augment and planned.data.steps_per_epoch == 10
    assert planned.train.batch_size == 4  # given, even though 4 is also the fixed default
    assert planned.plan["given"] == ["train.batch_size"]
    assert planned.plan["reasons"]["batch_size"] == "yours (the plan chose batch_size 16)"
    assert planned.plan["fingerprint"]["images"] == 6 and planned.plan["budget_seconds"] is None
    assert cfg.data.patch is None  # the request is not written into

    assert fit_config(cfg, {"data.data"}, plan=False, **QUIET) is cfg  # --no-plan
    cfg.data.size = 64
    assert fit_config(cfg, {"data.data", "data.size"}, **QUIET) is cfg  # --size given


def test_a_config_that_is_a_plan_or_a_run_is_not_planned_again(tmp_path):
    data = write_lines_dataset(tmp_path / "lines")
    cfg = lines_config(data)
    cfg.version = "1.0"  # a run's config.yaml
    assert fit_config(cfg, set(), **QUIET) is cfg
    cfg.version, cfg.plan = "", {"reasons": {}}
    assert fit_config(cfg, set(), **QUIET) is cfg


def test_a_resumed_run_keeps_its_saved_recipe(tmp_path):
    data = write_lines_dataset(tmp_path / "lines")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = fit_config(lines_config(data), {"data.data"}, **QUIET)
    saved.save(run_dir / "config.yaml")
    resumed = fit_config(lines_config(data, lr=0.1), {"data.data", "train.lr"}, run_dir=run_dir)
    assert resumed.data.patch == 64 and resumed.plan == saved.plan and resumed.train.lr == 0.1
    # --overwrite starts again, so it plans again: not the saved (here edited) recipe
    edited = replace(saved, data=replace(saved.data, patch=32))
    edited.save(run_dir / "config.yaml")
    assert fit_config(lines_config(data), {"data.data"}, run_dir=run_dir).data.patch == 32
    again = fit_config(lines_config(data), {"data.data"}, run_dir=run_dir, overwrite=True, **QUIET)
    assert again.data.patch == 64
    (run_dir / "metrics.json").write_text("{}")  # finished: a new run is planned afresh
    assert fit_config(lines_config(data), {"data.data"}, run_dir=run_dir, **QUIET).plan


def test_setting_names():
    assert setting_path("batch_size") == "train.batch_size" and setting_path("run_dir") is None
    cfg = RunConfig()
    cfg.model.depth, cfg.data.data = 3, "x"
    assert changed_settings(cfg) == {"model.depth", "data.data"}


@pytest.mark.parametrize("no_plan", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_cli_fit_plans_unless_told_not_to(tmp_path, capsys, no_plan):
    data = write_lines_dataset(tmp_path / "lines")
    run_dir = tmp_path / "run"
    args = ["fit", "--data", data, "--run-dir", run_dir, "--base-filters", "4"]
    args += ["--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "1"]
    args += ["--precision", "float32", "--quiet"]
    if no_plan:
        # depth 2, not the 256 px default's 4: the defaults are checked on the data
        # settings below, at half the training time
        args += ["--no-plan", "--depth", "2"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    cfg = RunConfig.load(run_dir / "config.yaml")
    assert (cfg.model.base_filters, cfg.train.batch_size, cfg.data.steps_per_epoch) == (4, 4, 1)
    if no_plan:  # the fixed defaults
        assert cfg.plan is None and "plan from the data" not in out
        assert (cfg.data.size, cfg.data.patch, cfg.data.fg_prob) == (256, None, 0.0)
        assert cfg.data.augment == ["hflip", "rotate"]
    else:
        assert out.count("plan from the data") == 1 and "base_filters  yours" in out
        assert (cfg.data.patch, cfg.data.fg_prob, cfg.model.depth) == (64, 0.33, 3)
        assert cfg.plan["given"] == [
            "data.steps_per_epoch",
            "model.base_filters",
            "train.batch_size",
            "train.epochs",
        ]


def test_the_python_api_plans_too_and_keeps_its_keywords(tmp_path):
    import unet_tf

    data = write_lines_dataset(tmp_path / "lines")
    result = unet_tf.fit(
        data=str(data), run_dir=tmp_path / "run", base_filters=4, epochs=1, steps_per_epoch=1,
        precision="float32", verbose=0,
    )  # fmt: skip
    cfg = result.config
    assert (cfg.data.patch, cfg.train.batch_size, cfg.model.base_filters) == (64, 16, 4)
    assert cfg.plan["given"] == ["data.steps_per_epoch", "model.base_filters", "train.epochs"]


def test_slow_validation_lengthens_a_planned_runs_epochs():
    from unet_tf.planning.recipe import _epochs_for_validation

    cfg = RunConfig(plan={"reasons": {"epochs": "10 steps per epoch"}})
    cfg = replace(cfg, data=replace(cfg.data, patch=96, steps_per_epoch=10))
    out = _epochs_for_validation(cfg, lambda c: 1.0, lambda c: 18.0)
    assert (out.train.epochs, out.data.steps_per_epoch) == (6, 72)  # 40 x 10 -> 6 x 72
    assert "6 epochs x 72 steps" in out.plan["reasons"]["epochs"]
    assert cfg.data.steps_per_epoch == 10  # the given config is not written into

    from unet_tf.data.sample import Sample
    from unet_tf.planning.recipe import _validation_may_be_slow

    def images(side: int, n: int) -> list[Sample]:
        return [Sample(f"v{i}", np.zeros((side, side, 1), np.uint8), None) for i in range(n)]

    # an epoch: 10 steps x 4 x 96^2 = 368,640 px; timing pays above a quarter of it
    assert _validation_may_be_slow(cfg, images(1024, 1))
    assert not _validation_may_be_slow(cfg, images(64, 4))
    assert not _validation_may_be_slow(
        replace(cfg, data=replace(cfg.data, patch=None)), images(1024, 1)
    )
