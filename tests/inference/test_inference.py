"""The predictor: resize / tile / whole-image modes, TTA, thresholds, ``--threshold auto``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.inference.predictor import (
    DEFAULT_OVERLAP,
    InferenceOptions,
    Predictor,
    load_predictor,
    run_inference,
)
from unet_tf.inference.tiling import predict_tiled
from unet_tf.models.unet import build_unet


def config(patch: int | None = None, size: int = 64) -> RunConfig:
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.model.base_filters = 1, 2, 4
    cfg.data.size, cfg.data.patch = size, patch
    return cfg


@pytest.fixture(scope="module")
def unet():
    return build_unet(1, 1, depth=2, base_filters=4)


def test_models_are_applied_as_they_were_trained(unet):
    resized = Predictor(unet, config())
    assert resized.mode(500, 300) == "resize" and "resized to 64 px" in resized.describe()
    patches = Predictor(unet, config(patch=32))
    assert patches.mode(500, 300) == "tile" and patches.tile == 32
    assert patches.mode(32, 20) == "whole"  # fits in one tile: no seams, no padding
    assert "tiles of 32 px" in patches.describe()


def test_options_switch_between_tiling_resizing_and_whole_images(unet):
    assert Predictor(unet, config(), InferenceOptions(tile=48)).mode(100, 100) == "tile"
    assert Predictor(unet, config(), InferenceOptions(tile=0)).mode(100, 100) == "whole"
    assert Predictor(unet, config(patch=32), InferenceOptions(resize=True)).mode(99, 99) == "resize"
    for bad in (
        InferenceOptions(resize=True, tile=32),
        InferenceOptions(overlap=1.0),
        InferenceOptions(tta="rot90"),
        InferenceOptions(threshold=1.5),
        InferenceOptions(tile_batch=0),
    ):
        with pytest.raises(UserError):
            Predictor(unet, config(), bad)
    with pytest.raises(UserError, match="--tile 2 is smaller than the 8 px"):
        Predictor(unet, config(), InferenceOptions(tile=2)).predict(np.zeros((20, 20)))


def test_tiled_prediction_goes_through_the_tiler(unet):
    image = np.random.default_rng(0).integers(0, 255, (70, 90)).astype(np.uint8)
    options = InferenceOptions(tile=32, overlap=0.5, blend="linear", tile_batch=3)
    predictor = Predictor(unet, config(), options)
    expected = predict_tiled(predictor.forward, image[..., None], 32, 0.5, "linear", 3)
    np.testing.assert_array_equal(predictor.predict(image), expected)


@pytest.mark.parametrize("tta", ["flips", "d4"])
def test_tta_keeps_shapes_and_changes_little_on_an_untrained_unet(unet, tta):
    image = np.random.default_rng(1).integers(0, 255, (64, 80)).astype(np.uint8)
    plain = Predictor(unet, config(), InferenceOptions(tile=0)).predict(image)
    averaged = Predictor(unet, config(), InferenceOptions(tile=0, tta=tta)).predict(image)
    assert averaged.shape == plain.shape == (64, 80, 1)
    assert 0 < np.abs(averaged - plain).max() < 0.2


def test_threshold_comes_from_the_run_unless_overridden(unet):
    cfg = config()
    cfg.train.threshold = 0.3
    assert Predictor(unet, cfg).threshold == 0.3
    assert Predictor(unet, cfg, InferenceOptions(threshold=0.7)).threshold == 0.7
    cfg.train.threshold = "auto"  # not chosen yet (no validation data): the default
    assert Predictor(unet, cfg).threshold == 0.5


@pytest.mark.slow
def test_fit_with_threshold_auto_stores_the_dice_optimal_threshold(tmp_path, tiny_config):
    from conftest import write_folder_dataset

    from unet_tf.training.fit import fit

    data = write_folder_dataset(tmp_path / "data", n=6)
    cfg = tiny_config(data, epochs=2, threshold="auto")
    result = fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    threshold = saved["train"]["threshold"]
    assert isinstance(threshold, float) and 0.05 <= threshold <= 0.95
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["threshold"] == threshold
    assert result.metrics["threshold"] == threshold
    assert load_predictor(tmp_path / "run").threshold == threshold


def test_overlap_and_tta_are_the_given_ones_else_the_plans_else_the_defaults():
    planned = RunConfig(plan={"inference": {"tile": 128, "overlap": 0.5, "tta": "flips"}})
    given = InferenceOptions(overlap=0.1, tta="d4")
    as_planned = run_inference(planned, InferenceOptions())
    assert (as_planned.overlap, as_planned.tta) == (0.5, "flips")
    chosen = run_inference(planned, given)
    assert (chosen.overlap, chosen.tta) == (0.1, "d4")  # --overlap and --tta win
    assert run_inference(planned, InferenceOptions(tta="none")).tta == "none"
    unplanned = run_inference(RunConfig(), InferenceOptions())  # or planned before TTA
    assert (unplanned.overlap, unplanned.tta) == (DEFAULT_OVERLAP, "none") == (0.25, "none")
    old = run_inference(RunConfig(plan={"inference": {"resize": 256}}), InferenceOptions())
    assert (old.overlap, old.tta) == (0.25, "none")
    predictor = Predictor(lambda b: b, planned)
    assert predictor.options.tta == "flips" and "TTA flips" in predictor.describe()
    assert predictor.untiled().options.tta == "none"  # what exports compute


def test_the_tile_is_the_given_one_else_the_plans_else_the_training_patch():
    cfg = RunConfig()
    cfg.data.patch = 96
    assert Predictor(lambda b: b, cfg).tile == 96  # trained without a plan
    cfg.plan = {"inference": {"tile": 256, "overlap": 0.25, "tta": "flips"}}
    assert Predictor(lambda b: b, cfg).tile == 256
    assert Predictor(lambda b: b, cfg).mode(256, 256) == "whole"
    assert Predictor(lambda b: b, cfg, InferenceOptions(tile=48)).tile == 48  # --tile wins


def test_a_remembering_network_computes_each_input_once():
    from unet_tf.inference.predictor import remembering

    calls = []

    def forward(batch):
        calls.append(batch.shape)
        return batch * 2

    network = remembering(forward)
    ones = np.ones((1, 8, 8, 1), np.float32)
    np.testing.assert_array_equal(network(ones), 2 * ones)
    np.testing.assert_array_equal(network(ones.copy()), 2 * ones)  # same bytes: remembered
    network(np.zeros((1, 8, 8, 1), np.float32))
    network(np.ones((1, 4, 16, 1), np.float32))  # same bytes, other shape: computed
    assert len(calls) == 3
