"""predict / evaluate with tiling, TTA, instances, reports; CTC SEG and DRIVE metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import run_cli as run
from conftest import shared_path, write_folder_dataset
from PIL import Image

from unet_tf.cli import main

TINY = ["--base-filters", "4", "--depth", "2", "--batch-size", "2", "--precision", "float32"]


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    """A U-Net trained for two epochs on 32 px patches of 64 px images: it tiles by default."""
    root = tmp_path_factory.mktemp("infer")
    data = write_folder_dataset(root / "data", n=4)
    run_dir = root / "run"
    args = ["fit", "--data", data, "--run-dir", run_dir, "--patch", "32", "--epochs", "2"]
    assert main([str(a) for a in [*args, *TINY, "--quiet"]]) == 0
    return data, run_dir


def test_evaluate_tiles_with_tta_instances_and_writes_a_report(patch_run, tmp_path, capsys):
    data, run_dir = patch_run
    report, scores = tmp_path / "report", tmp_path / "scores.json"
    code, text, err = run(
        capsys, "evaluate", run_dir, "--data", data, "--subset", "all", "--tta", "flips",
        "--instances", "--min-size", "5", "--report", report, "--json", scores,
    )  # fmt: skip
    assert code == 0, err
    assert "tiles of 32 px" in text and "TTA flips" in text and "seg" in text
    assert "certainty: foreground pixels" in text
    result = json.loads(scores.read_text())
    objects = {"seg", "ap50", "map", "f1_50", "pq", "splits", "merges"}
    assert set(result["mean"]) == {"dice", "iou", "precision", "recall", *objects}
    assert result["objects"]["reference"] == 4  # one disk per image
    for name in ("report.md", "scores.csv", "curves.png", "histogram.png", "panels/img 00.png"):
        assert (report / name).is_file(), name
    code, _, err = run(capsys, "evaluate", run_dir, "--data", data, "--report", report)
    assert code == 2 and "already holds a report" in err


def test_resize_and_whole_image_options_change_the_prediction(patch_run, tmp_path, capsys):
    data, run_dir = patch_run
    dice = {}
    for flags in (["--tile", "0"], ["--resize"], []):
        out = tmp_path / f"s{len(dice)}.json"
        assert (
            main(["evaluate", str(run_dir), "--data", str(data), "--json", str(out), *flags]) == 0
        )
        dice[" ".join(flags)] = json.loads(out.read_text())["mean"]["dice"]
    capsys.readouterr()
    assert len(set(dice.values())) == 3


def test_predict_writes_instance_labels(patch_run, tmp_path, capsys):
    data, run_dir = patch_run
    out = tmp_path / "pred"
    code, text, err = run(
        capsys, "predict", run_dir, data / "images" / "img 00.png", "--out", out,
        "--instances", "--split-touching", "--threshold", "0.4",
    )  # fmt: skip
    assert code == 0, err
    assert "objects" in text
    labels = tifffile.imread(out / "img 00_labels.tif")
    mask = np.array(Image.open(out / "img 00_mask.png"))
    assert labels.dtype == np.uint16 and labels.shape == (64, 64)
    assert set(np.unique(labels[mask == 0])) <= {0}
    assert np.array_equal(labels > 0, mask > 0)  # the mask is the objects, holes filled
    assert (out / "img 00_rois.zip").is_file() and (out / "img 00_objects.csv").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--min-size", "5"], "need --instances"),
        (["--tile", "32", "--resize"], "exclude each other"),
        (["--overlap", "1.5"], "--overlap must be in [0, 1)"),
    ],
)
def test_bad_inference_options_are_one_line_errors(patch_run, tmp_path, capsys, args, message):
    data, run_dir = patch_run
    code, _, err = run(capsys, "predict", run_dir, data, "--out", tmp_path, *args)
    assert code == 2 and message in err and err.count("\n") == 1


def write_ctc(root):
    """A tiny Cell Tracking Challenge sequence: frames and uint16 instance masks."""
    rng = np.random.default_rng(0)
    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    for t in range(2):
        labels = np.zeros((64, 64), np.uint16)
        labels[8:24, 8:24], labels[30:50, 36:56] = 3, 9
        image = (60 + 120 * (labels > 0) + rng.normal(0, 10, labels.shape)).astype(np.uint16)
        tifffile.imwrite(root / "01" / f"t{t:03d}.tif", image)
        tifffile.imwrite(root / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", labels)
    return root


def test_evaluate_ctc_reports_seg_next_to_pixel_scores(patch_run, tmp_path, capsys):
    _, run_dir = patch_run
    data = write_ctc(tmp_path / "ctc")
    scores = tmp_path / "ctc.json"
    code, _, err = run(capsys, "evaluate", run_dir, "--data", data, "--json", scores)
    assert code == 0, err
    result = json.loads(scores.read_text())
    assert {"dice", "iou", "seg"} <= set(result["mean"])
    assert result["objects"]["reference"] == 4  # two labelled cells in each of two frames


@pytest.mark.shared
def test_evaluate_drive_scores_inside_the_fov(tmp_path, capsys):
    """The real DRIVE reader with FOV masks, scored by an untrained RGB U-Net."""
    from unet_tf.models.unet import build_unet

    drive = shared_path("data", "drive", "training")
    model_path = tmp_path / "rgb.keras"
    build_unet(3, 1, depth=2, base_filters=4).save(model_path)
    scores = tmp_path / "drive.json"
    code, _, err = run(
        capsys, "evaluate", model_path, "--data", drive, "--format", "drive", "--tile", "128",
        "--json", scores,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(scores.read_text())
    assert set(result["mean"]) == {
        "dice", "iou", "precision", "sensitivity", "specificity", "accuracy", "auc"
    }  # fmt: skip
    assert len(result["images"]) == 20
    assert 0.0 <= result["dataset"]["auc"] <= 1.0


def test_fit_and_evaluate_on_a_drive_layout_report_fov_metrics(tmp_path, capsys):
    from layouts import write_drive

    data = write_drive(tmp_path / "drive", numbers=(21, 22, 23, 24))
    run_dir = tmp_path / "run"
    args = ["fit", "--data", data, "--run-dir", run_dir, "--size", "64", "--epochs", "1", *TINY]
    code, text, err = run(capsys, *args, "--quiet")
    assert code == 0, err
    assert "sensitivity" in text and "specificity" in text and "auc" in text
    args = ["evaluate", run_dir, "--data", data, "--subset", "all", "--report", tmp_path / "r"]
    code, text, err = run(capsys, *args)
    assert code == 0, err
    assert "specificity" in text.splitlines()[1] and len(text.splitlines()) > 8
    assert (tmp_path / "r" / "panels" / "21_training.png").is_file()
