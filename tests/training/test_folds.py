"""Fold ensembles: every fold trained, out-of-fold threshold, folds averaged, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import TINY_FIT, run_cli, write_folder_dataset
from layouts import cell_labels
from PIL import Image

import unet_tf
from unet_tf.api import evaluate
from unet_tf.errors import UserError
from unet_tf.evaluation.tuning import FOREGROUND_THRESHOLDS, TUNED
from unet_tf.inference.predictor import MeanNetwork, load_predictor
from unet_tf.training.folds import fit_folds


def write_cells(root: Path, n: int = 4, size: int = 64) -> Path:
    """A folder of images whose masks label cells one by one (uint16 TIFFs): instance
    data, so ``--target auto`` trains the separating distance target."""
    rng = np.random.default_rng(2)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        labels = cell_labels(size, i)
        image = 40 + 150 * (labels > 0) + rng.normal(0, 10, labels.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            root / "images" / f"img {i:02d}.png"
        )
        tifffile.imwrite(root / "masks" / f"img {i:02d}.tif", labels)
    return root


@pytest.mark.slow
def test_all_folds_train_average_and_resume(tmp_path, capsys):
    """``unet_tf.fit(folds=2, all_folds=True)`` on labelled cells, the ensemble's
    properties, then ``fit --folds 2 --all-folds`` on the command line, which finds
    both folds trained."""
    data = write_cells(tmp_path / "data")
    run = tmp_path / "ensemble"
    tiny = {"size": 64, "base_filters": 4, "depth": 2, "batch_size": 2, "precision": "float32"}
    result = unet_tf.fit(data=data, folds=2, all_folds=True, epochs=1, threshold="auto",
                         run_dir=run, verbose=0, **tiny)  # fmt: skip
    assert [d.name for d in result.folds] == ["fold_0", "fold_1"]

    record = json.loads((run / "ensemble.json").read_text())
    assert record["folds"] == ["fold_0", "fold_1"] and record["threshold"] == result.threshold
    # every image scored once, by a model that never saw it
    assert record["out_of_fold_images"] == result.out_of_fold["out_of_fold_images"] == 4
    assert 0.05 <= record["threshold"] <= 0.95
    val_names = [set(load_predictor(run / f"fold_{k}").cfg.data.val_names) for k in range(2)]
    assert set().union(*val_names) == {f"img {i:02d}" for i in range(4)}
    assert sum(len(v) for v in val_names) == 4  # the folds' validation sets are disjoint
    # the seed height is chosen on the same out-of-fold predictions, at the ensemble's
    # Dice-optimal threshold, though each fold chose its own with it (--threshold auto)
    post = record["postprocess"]
    assert post == result.postprocess and post["parameter"] == "seed_height"
    assert post["seed_height"] in TUNED["distance"].candidates and "threshold" not in post
    fold_metrics = json.loads((run / "fold_0" / "metrics.json").read_text())
    assert fold_metrics["postprocess"]["threshold"] in FOREGROUND_THRESHOLDS

    ensemble = load_predictor(run)
    assert isinstance(ensemble.network, MeanNetwork) and ensemble.threshold == record["threshold"]
    assert ensemble.cfg.postprocess.seed_height == post["seed_height"]
    image = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    folds = [load_predictor(run / f"fold_{k}").predict(image) for k in range(2)]
    np.testing.assert_allclose(ensemble.predict(image), np.mean(folds, axis=0), atol=1e-5)
    assert 0 <= evaluate(run, data).mean()["dice"] <= 1

    stamps = [(run / f"fold_{k}" / "model.keras").stat().st_mtime_ns for k in range(2)]
    args = ["fit", "--data", data, "--folds", "2", "--all-folds", "--epochs", "1"]
    code, out, err = run_cli(capsys, *args, "--run-dir", run, *TINY_FIT)
    assert code == 0, err
    assert out.count("finished earlier, kept") == 2  # a rerun trains nothing
    assert f"and seed_height {post['seed_height']:g} from out-of-fold predictions" in out
    assert "ensemble of 2 folds" in out and "out_of_fold_dice_at_0.5" in out
    assert stamps == [(run / f"fold_{k}" / "model.keras").stat().st_mtime_ns for k in range(2)]
    assert json.loads((run / "ensemble.json").read_text()) == record  # chosen again alike

    # the ensemble applies its recorded choice, not its first fold's
    record["postprocess"]["seed_height"] = 0.6
    (run / "ensemble.json").write_text(json.dumps(record))
    assert load_predictor(run).cfg.postprocess.seed_height == 0.6


def test_an_ensemble_needs_two_folds_and_its_own_folder(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path)
    with pytest.raises(UserError, match="--folds 2 or more"):
        fit_folds(cfg, tmp_path / "run", folds=1)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="not a unet-tf fold ensemble"):
        fit_folds(cfg, user, folds=3)
    assert (user / "notes.txt").read_text() == "x"


def test_a_budget_covers_the_whole_ensemble_and_a_resumed_one_keeps_its_recipe(
    tmp_path, tiny_config
):
    from dataclasses import replace

    from unet_tf.planning.recipe import fit_config

    data = write_folder_dataset(tmp_path / "data", n=4, size=64, seed=2)
    cfg = tiny_config(data, budget_seconds=100.0)
    cfg.data.folds = 2
    lines: list[str] = []
    planned = fit_config(cfg, set(), plan=False, run_dir=tmp_path / "ens", log=lines.append,
                         all_folds=True)  # fmt: skip
    assert planned.train.budget_seconds == 50.0  # 100 s shared by 2 folds
    assert "covers all 2 folds: 0.8 min each" in lines[0]

    # fold 0 began with its recipe: a rerun trains that recipe, not a new plan or timing
    saved = replace(planned, train=replace(planned.train, budget_steps=7, epochs=1))
    (tmp_path / "ens" / "fold_0").mkdir(parents=True)
    saved.save(tmp_path / "ens" / "fold_0" / "config.yaml")
    lines.clear()
    resumed = fit_config(cfg, set(), plan=False, run_dir=tmp_path / "ens", log=lines.append,
                         all_folds=True)  # fmt: skip
    assert (resumed.train.budget_seconds, resumed.train.budget_steps) == (50.0, 7)
    assert lines == ["resuming: the recipe is the one saved in its folds' config.yaml"]
