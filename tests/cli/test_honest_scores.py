"""``evaluate`` scores the run's validation images and says when images were trained on;
``fit --threshold auto`` labels its scores; real CTC data works as downloaded."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml
from conftest import TINY_FIT as TINY
from conftest import run_cli as run
from conftest import shared_path, write_folder_dataset
from layouts import write_ctc


def val_names(run_dir) -> list[str]:
    return yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["val_names"]


def test_fit_records_training_hashes_and_labelled_scores(tiny_run):
    _, run_dir = tiny_run
    record = json.loads((run_dir / "data.json").read_text())
    assert len(record["train"]) == 5 and [e["name"] for e in record["val"]] == val_names(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation_threshold"] == 0.5
    assert 0.05 <= metrics["threshold"] <= 0.95
    assert "threshold_choice" in metrics and "validation_at_chosen_threshold" in metrics


def test_fit_console_names_both_thresholds(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", n=4, size=32)
    args = ["fit", "--data", data, "--run-dir", tmp_path / "r", "--epochs", "1"]
    code, out, _ = run(capsys, *args, "--threshold", "auto", "--val-split", "0.5", *TINY)
    assert code == 0
    chosen = json.loads((tmp_path / "r" / "metrics.json").read_text())["threshold"]
    assert "validation at full resolution, threshold 0.5: dice" in out
    assert f"chosen threshold {chosen:g} (cross-fitted" in out


def test_evaluate_without_data_scores_the_validation_images(tiny_run, capsys):
    data, run_dir = tiny_run
    for extra in ([], ["--data", data]):
        code, out, err = run(capsys, "evaluate", run_dir, *extra)
        assert code == 0 and "warning" not in err
        assert f"evaluating 1 val image(s) of {data}" in out
        assert val_names(run_dir)[0] in out


def test_evaluate_subset_train_warns_that_images_were_trained_on(tiny_run, capsys):
    _, run_dir = tiny_run
    code, out, err = run(capsys, "evaluate", run_dir, "--subset", "train")
    assert code == 0 and "evaluating 5 train image(s)" in out
    assert err.count("warning:") == 1 and "5 of the 5 scored image(s) were used to train" in err


def test_a_renamed_copy_of_a_training_image_is_recognised(tiny_run, tmp_path, capsys):
    data, run_dir = tiny_run
    stems = [p.stem for p in (data / "images").iterdir()]
    trained = next(n for n in stems if n not in val_names(run_dir))
    copy = tmp_path / "test"
    for sub in ("images", "masks"):
        (copy / sub).mkdir(parents=True)
        shutil.copy(data / sub / f"{trained}.png", copy / sub / "new name.png")
        shutil.copy(data / sub / f"{val_names(run_dir)[0]}.png", copy / sub / "held out.png")
    out_json = tmp_path / "scores.json"
    code, _, err = run(capsys, "evaluate", run_dir, "--data", copy, "--json", out_json)
    assert code == 0 and "1 of the 2 scored image(s) were used to train" in err
    provenance = json.loads(out_json.read_text())["provenance"]
    model_hash = hashlib.sha256((run_dir / "model.keras").read_bytes()).hexdigest()
    assert provenance["model_sha256"] == model_hash
    assert provenance["used_in_training"] == ["new name"]
    assert provenance["images"] == ["held out", "new name"]
    assert provenance["subset"] == "all" and provenance["format"] == "folder"
    assert (
        provenance["threshold"]
        == yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["threshold"]
    )
    assert provenance["inference"]["resize_to"] == 64 and provenance["inference"]["tta"] == "none"
    code, _, err = run(capsys, "evaluate", run_dir, "--data", copy, "--subset", "val")
    assert code == 2 and "--subset val picks images of the data the run trained on" in err


def test_ctc_frames_not_starting_at_zero_fit_and_evaluate_with_seg(tmp_path, capsys):
    root = write_ctc(tmp_path / "ctc", sequences=("01",), frames=8, st_frames=tuple(range(8)))
    for folder, prefix in (("01", "t"), ("01_GT/SEG", "man_seg"), ("01_ST/SEG", "man_seg")):
        for path in sorted((root / folder).iterdir(), reverse=True):
            number = int(path.stem.removeprefix(prefix))
            path.rename(path.with_name(f"{prefix}{number + 37:03d}.tif"))
    run_dir = tmp_path / "run"
    args = ["fit", "--data", root, "--run-dir", run_dir, "--epochs", "1", "--val-split", "0.25"]
    code, out, _ = run(capsys, *args, *TINY)
    assert code == 0
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    assert cfg["split"] == "blocked" and len(cfg["val_names"]) == 2
    code, out, _ = run(capsys, "evaluate", run_dir)
    assert code == 0 and "seg" in out.splitlines()[1]
    assert all(name in out for name in cfg["val_names"]) and "01_t037" in cfg["val_names"][0] + out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["DIC-C2DH-HeLa", "PhC-C2DH-U373"])
def test_real_ctc_data_as_downloaded(name, tmp_path, capsys):
    root = shared_path("data", "ctc", name)
    run_dir = tmp_path / "run"
    args = ["fit", "--data", root, "--run-dir", run_dir, "--epochs", "1", "--steps-per-epoch", "1"]
    # 5 % of the frames validate (one block of 4-6): the layout is tested, not the default
    # split, and every validation frame costs a watershed per candidate setting.
    code, _, err = run(capsys, *args, "--val-split", "0.05", *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", run_dir)
    assert code == 0, err
    assert "seg" in out.splitlines()[1] and "warning" not in err
