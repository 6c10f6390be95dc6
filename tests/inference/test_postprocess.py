"""From a boundary-target prediction to labelled cells, and the choice of its threshold.

The ideal output of a separating target is the target itself, so feeding a target to
the post-processing must give back the cells it was built from.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import TINY_FIT, run_cli
from layouts import write_ctc
from scipy import ndimage

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.data.targets import boundary_target, distance_target
from unet_tf.evaluation.objects import seg_measure
from unet_tf.evaluation.tuning import TUNED, cross_fit, tune_postprocess
from unet_tf.inference.postprocess import InstanceOptions, label_cells, label_instances
from unet_tf.inference.predictor import InferenceOptions, Predictor, to_mask
from unet_tf.training.fit import compile_model
from unet_tf.training.losses import DistanceTargetLoss


def touching_discs(size: int = 40) -> np.ndarray:
    """Two discs of radius 9 whose centres are 16 px apart: they share a 9 px edge."""
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    labels[(yy - 20) ** 2 + (xx - 12) ** 2 <= 81] = 1
    labels[((yy - 20) ** 2 + (xx - 28) ** 2 <= 81) & (labels == 0)] = 2
    return labels


def boundary_config() -> RunConfig:
    cfg = RunConfig()
    cfg.data.target, cfg.model.num_classes = "boundary", 3
    return cfg


def test_ideal_boundary_output_gives_back_two_touching_cells():
    labels = touching_discs()
    probs = boundary_target(labels, 2)
    cells = label_cells(probs, boundary_config(), 0.5)
    assert cells.max() == 2
    assert seg_measure(labels, cells).score == pytest.approx(1.0)  # every pixel back in place
    # Read as a pixel mask, the same foreground is one merged object.
    assert label_instances(labels > 0).max() == 1
    binary = RunConfig()
    assert label_cells((labels > 0)[..., None].astype(np.float32), binary, 0.5).max() == 1


def test_interior_threshold_decides_the_markers():
    labels = touching_discs()
    probs = boundary_target(labels, 2) * 0.6  # interior 0.6, border 0.6, background 0.6
    probs[..., 0] += 0.4 * (labels == 0)  # background stays the arg-max outside the cells
    cfg = boundary_config()
    assert label_cells(probs, cfg, 0.5, InstanceOptions(interior_threshold=0.5)).max() == 2
    # No pixel passes 0.7: no markers, and the foreground is kept as one component.
    assert label_cells(probs, cfg, 0.5, InstanceOptions(interior_threshold=0.7)).max() == 1


def test_border_objects_small_objects_and_holes():
    labels = np.zeros((20, 20), np.int32)
    labels[0:5, 0:5] = 1  # touches the image's edge
    labels[8:15, 8:15] = 2
    labels[11, 11] = 0  # a hole, inside the interior
    labels[17:19, 2:4] = 3  # 4 px
    probs = boundary_target(labels, 1)
    probs[11, 11] = [1.0, 0.0, 0.0]  # a predicted hole: background inside the cell
    cfg = boundary_config()
    cfg.postprocess.remove_border = True
    cfg.postprocess.min_size = 5
    cells = label_cells(probs, cfg, 0.5)
    assert cells.max() == 1  # only the middle cell
    assert cells[11, 11] == 1 and (cells[8:15, 8:15] == 1).all()  # its hole filled
    kept = label_cells(probs, cfg, 0.5, InstanceOptions(remove_border=False, min_size=0))
    assert kept.max() == 3  # the options override the run's settings


def identity_predictor(cfg: RunConfig) -> Predictor:
    """A 'network' that returns its 3-channel input: images that are ideal predictions."""
    cfg.model.in_channels, cfg.data.patch = 3, 40
    return Predictor(lambda batch: batch, cfg, InferenceOptions(tile=0))


def test_cross_fitting_chooses_on_one_half_and_scores_the_other(tmp_path):
    labels = touching_discs()
    probs = boundary_target(labels, 2)
    soft = probs.copy()
    soft[..., 1] *= 0.45  # interiors at 0.45: markers appear only below it
    soft[..., 2] += 0.55 * probs[..., 1]
    val = [Sample(f"t{i}", p, labels) for i, p in enumerate([probs, probs, soft, soft])]
    predictor = identity_predictor(boundary_config())
    (threshold, chosen), crossed = cross_fit(predictor, val, TUNED["boundary"])
    assert threshold == predictor.threshold  # no thresholds given: the run's is kept
    # First half: every threshold works, the default 0.5 wins the tie; it fails on the
    # second half (no markers: one merged cell). Second half: only 0.3 and 0.4 work.
    assert chosen in (0.3, 0.4)
    assert crossed.seg.reference == 8
    merged = seg_measure(labels, np.where(labels > 0, 1, 0)).jaccards
    assert crossed.seg.score == pytest.approx((4 + 2 * merged.sum()) / 8)
    cfg, metrics = tune_postprocess(predictor, val, {"epochs": 1}, tmp_path / "config.yaml")
    assert cfg.postprocess.interior_threshold == chosen
    assert RunConfig.load(tmp_path / "config.yaml").postprocess.interior_threshold == chosen
    assert metrics["epochs"] == 1 and metrics["postprocess"]["seg_crossfit"] < 1.0


@pytest.mark.parametrize(
    ("target", "setting"), [("boundary", "interior_threshold"), ("contact", "seed_height")]
)
def test_fit_then_evaluate_instances_from_the_run_and_a_savedmodel(
    tmp_path, capsys, target, setting
):
    data = write_ctc(tmp_path / "ctc", sequences=("01",), frames=6, st_frames=(0, 1, 2, 3, 4, 5))
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "fit", "--data", data, "--run-dir", run_dir, "--epochs", "1",
        "--steps-per-epoch", "2", "--val-split", "0.34", "--target", target, *TINY_FIT,
    )  # fmt: skip
    assert code == 0, err
    assert f"target {target} (3 output channel(s))" in out
    cfg = RunConfig.load(run_dir / "config.yaml")
    assert (cfg.data.target, cfg.model.num_classes) == (target, 3)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["postprocess"][setting] == getattr(cfg.postprocess, setting)
    assert metrics["validation"]["mean"]["dice"] >= 0  # scored on the foreground
    export = tmp_path / "export"
    assert run_cli(capsys, "export", run_dir, "--out", export)[0] == 0
    scores = {}
    for name, model in [("run", run_dir), ("export", export)]:
        out_json = tmp_path / f"{name}.json"
        code, out, err = run_cli(
            capsys, "evaluate", model, "--data", data, "--subset", "all", "--instances",
            "--json", out_json,
        )  # fmt: skip
        assert code == 0, err
        scores[name] = json.loads(out_json.read_text())
    assert "seg" in scores["run"]["mean"]
    assert scores["export"]["objects"] == scores["run"]["objects"]
    assert scores["export"]["mean"]["seg"] == pytest.approx(scores["run"]["mean"]["seg"], abs=1e-6)


def distance_config() -> RunConfig:
    cfg = RunConfig()
    cfg.data.target, cfg.model.num_classes, cfg.model.activation = "distance", 2, "sigmoid"
    return cfg


def cone_prediction(labels: np.ndarray, foreground: float = 0.9) -> np.ndarray:
    """A smooth 'predicted' map: cones 1 - r / 9 around the discs' centres, the right one
    scaled by 0.9 (a network's peaks are never equal); p(foreground) 0.9 on the cells."""
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    cones = [h * (1 - np.hypot(yy - 20, xx - cx) / 9) for h, cx in ((1.0, 12), (0.9, 28))]
    distance = np.clip(np.maximum(*cones), 0, 1) * (labels > 0)
    return np.stack([foreground * (labels > 0), distance], -1).astype(np.float32)


def test_distance_watershed_splits_two_touching_discs():
    labels = touching_discs()
    probs = cone_prediction(labels)
    cfg = distance_config()
    # The foreground is channel 0 > threshold (an arg-max would pick the map at the centres).
    np.testing.assert_array_equal(to_mask(probs, 0.5, "distance"), labels > 0)
    cells = label_cells(probs, cfg, 0.5)
    assert cells.max() == 2
    assert seg_measure(labels, cells).score > 0.9
    # The saddle where the discs meet (x = 20) is at 1 - 8/9 = 0.11 and the lower peak at
    # 0.9; the 1 px Gaussian the map is smoothed with first lowers that peak to 0.78 and
    # lifts the saddle to 0.18, so the peak stands 0.60 above it: a seed height of 0.5
    # keeps both seeds, 0.7 one seed, one cell.
    assert label_cells(probs, cfg, 0.5, InstanceOptions(seed_height=0.5)).max() == 2
    assert label_cells(probs, cfg, 0.5, InstanceOptions(seed_height=0.7)).max() == 1
    # The ideal output, the target itself, gives back the cells but for the contact
    # column carved out of cell 1 (distance 0 there), which the watershed may give to 2.
    ideal = label_cells(distance_target(labels), cfg, 0.5)
    assert ideal.max() == 2 and seg_measure(labels, ideal).score > 0.95


def test_a_predicted_contact_cuts_a_single_peak_in_two():
    """Two touching discs whose predicted map is one dome: the contact channel parts them."""
    labels = touching_discs()
    yy, xx = np.mgrid[:40, :40]
    dome = np.clip(1 - np.hypot(yy - 20, (xx - 20) / 2) / 9, 0, 1) * (labels > 0)
    contact = np.zeros((40, 40), np.float32)
    contact[:, 19:22] = 0.9 * (labels[:, 19:22] > 0)  # a 3 px band where the discs meet
    probs = np.stack([0.9 * (labels > 0), dome, np.zeros_like(contact)], -1)
    cfg = distance_config()
    cfg.data.target, cfg.model.num_classes = "contact", 3
    assert label_cells(probs.astype(np.float32), cfg, 0.5).max() == 1  # no contact seen
    probs[..., 2] = contact
    cells = label_cells(probs.astype(np.float32), cfg, 0.5)
    assert cells.max() == 2 and seg_measure(labels, cells).score > 0.9
    # The band is grown over, not cut out: every foreground pixel belongs to a cell.
    np.testing.assert_array_equal(cells > 0, labels > 0)


def test_objects_whose_map_stays_faint_are_dropped():
    labels = touching_discs()
    probs = cone_prediction(labels)
    probs[30:36, 2:8, 0] = 0.9  # a speck of foreground whose distance map peaks at 0.2
    probs[30:36, 2:8, 1] = 0.2
    cfg = distance_config()
    cfg.postprocess.min_peak = 0.0
    assert label_cells(probs, cfg, 0.5).max() == 3
    cfg.postprocess.min_peak = 0.3  # the default: the speck is a fragment, not a cell
    cells = label_cells(probs, cfg, 0.5)
    assert cells.max() == 2 and not cells[30:36, 2:8].any()


def test_foreground_without_a_seed_is_kept():
    labels = touching_discs()
    probs = cone_prediction(labels)
    probs[..., 1] = 0.0  # a flat map: no maximum stands out, so no seed
    cfg = distance_config()
    cfg.postprocess.min_peak = 0.0  # the default drops an object whose map stays at 0
    cells = label_cells(probs, cfg, 0.5)
    assert cells.max() == 1 and (cells > 0).sum() == (labels > 0).sum()


def test_cross_fitting_the_seed_height(tmp_path):
    labels = touching_discs()
    flat = cone_prediction(labels)
    flat[..., 1] = 0.25 * flat[..., 1] + 0.3 * (labels > 0)  # lower peak 0.525, saddle 0.33
    sharp = cone_prediction(labels)  # lower peak 0.9, saddle 0.11
    val = [Sample(f"t{i}", p, labels) for i, p in enumerate([sharp, sharp, flat, flat])]
    cfg = distance_config()
    cfg.model.in_channels, cfg.data.patch = 2, 40
    predictor = Predictor(lambda batch: batch, cfg, InferenceOptions(tile=0))
    (_, chosen), crossed = cross_fit(predictor, val, TUNED["distance"])
    assert chosen in (0.05, 0.1, 0.2)  # splits both kinds; 0.3 and above merge the flat ones
    assert crossed.seg.reference == 8
    out, metrics = tune_postprocess(predictor, val, {}, tmp_path / "config.yaml")
    assert out.postprocess.seed_height == chosen and out.train.threshold == 0.5
    assert metrics["postprocess"]["parameter"] == "seed_height"
    assert RunConfig.load(tmp_path / "config.yaml").postprocess.seed_height == chosen


def test_threshold_auto_chooses_the_foreground_threshold_with_the_seed_height(tmp_path):
    """A foreground spread past the cells (0.6 on a 4 px ring around them) grows every
    cell at 0.5; only a threshold of 0.6 or more gives the cells their own outlines."""
    labels = touching_discs()
    spread = cone_prediction(labels)
    ring = ndimage.binary_dilation(labels > 0, iterations=4) & (labels == 0)
    spread[..., 0][ring] = 0.6
    val = [Sample(f"t{i}", spread, labels) for i in range(4)]
    cfg = distance_config()
    cfg.model.in_channels, cfg.data.patch = 2, 40
    cfg.train.threshold = "auto"
    predictor = Predictor(lambda batch: batch, cfg, InferenceOptions(tile=0))
    assert predictor.threshold == 0.5  # auto means 0.5 until one is chosen
    out, metrics = tune_postprocess(predictor, val, {"threshold": 0.5}, tmp_path / "config.yaml")
    assert out.train.threshold in (0.6, 0.7, 0.8) and metrics["threshold"] == out.train.threshold
    assert metrics["postprocess"]["threshold"] == out.train.threshold
    assert metrics["postprocess"]["seg_crossfit"] > 0.9  # each half chose a working pair
    assert (
        metrics["postprocess"]["objective"] == "pq" and metrics["postprocess"]["pq_crossfit"] > 0.8
    )
    assert RunConfig.load(tmp_path / "config.yaml").train.threshold == out.train.threshold


def test_fit_distance_then_predict_and_evaluate_instances(tmp_path, capsys):
    data = write_ctc(tmp_path / "ctc", sequences=("01",), frames=6, st_frames=(0, 1, 2, 3, 4, 5))
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "fit", "--data", data, "--run-dir", run_dir, "--epochs", "1",
        "--steps-per-epoch", "2", "--val-split", "0.34", *TINY_FIT,  # auto: distance
    )  # fmt: skip
    assert code == 0, err
    assert "target distance (2 output channel(s))" in out
    cfg = RunConfig.load(run_dir / "config.yaml")
    assert (cfg.model.num_classes, cfg.model.activation) == (2, "sigmoid")
    # Trained with the distance target's own loss, not the configured loss on both
    # channels. model.keras keeps the network without its compile settings, so the
    # run's network is compiled again the way fit compiles it, from the recorded config.
    network = keras.saving.load_model(run_dir / "model.keras")
    compile_model(network, cfg)
    assert type(network.loss) is DistanceTargetLoss
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["postprocess"]["seed_height"] == cfg.postprocess.seed_height
    code, out, err = run_cli(
        capsys, "predict", run_dir, data / "01", "--out", tmp_path / "pred", "--instances",
        "--seed-height", "0.2",
    )  # fmt: skip
    assert code == 0, err
    assert list((tmp_path / "pred").glob("*.tif*"))
    code, out, err = run_cli(
        capsys, "evaluate", run_dir, "--data", data, "--subset", "all", "--instances",
        "--json", tmp_path / "scores.json",
    )  # fmt: skip
    assert code == 0, err
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert 0 <= scores["mean"]["seg"] <= 1 and 0 <= scores["mean"]["dice"] <= 1

    # Chosen again on other annotated frames (after a post-processing change, say):
    # config.yaml and metrics.json are rewritten, the network is not retrained.
    from unet_tf.data.formats.registry import read_dataset
    from unet_tf.evaluation.tuning import retune

    before = (run_dir / "model.keras").stat().st_mtime_ns
    frames = read_dataset(data, cfg.data)[:4]
    again = retune(run_dir, frames, log=lambda _: None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["postprocess"]["objective"] == "pq"
    assert metrics["postprocess"]["objects"]["reference"] == sum(
        len(np.unique(f.mask)) - 1 for f in frames
    )
    assert RunConfig.load(run_dir / "config.yaml").postprocess == again.postprocess
    assert (run_dir / "model.keras").stat().st_mtime_ns == before


def test_the_choice_counts_spurious_cells_which_seg_does_not():
    """Two settings cover every cell equally well (same SEG); one also predicts specks.
    PQ, the tuning's objective, prefers the clean one; SEG could not tell them apart."""
    from unet_tf.evaluation.objects import object_scores
    from unet_tf.evaluation.tuning import _best

    labels = touching_discs()
    specks = labels.copy()
    specks[0:3, 0:3], specks[36:39, 36:39] = 3, 4  # two objects no cell matches
    clean, noisy = object_scores(labels, labels), object_scores(labels, specks)
    assert clean.seg.score == noisy.seg.score == 1.0
    table = {(0.5, 0.3): [noisy, noisy], (0.5, 0.4): [clean, clean]}
    assert _best(table, range(2), default=(0.5, 0.3)) == (0.5, 0.4)
