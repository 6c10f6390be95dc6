"""Cell Tracking Challenge, DRIVE and video readers: layouts, options, errors, one fit step each."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import yaml
from conftest import shared_path, write_folder_dataset
from layouts import write_ctc, write_drive, write_tiff_stack, write_video
from PIL import Image

from unet_tf.cli import main
from unet_tf.config import DataConfig
from unet_tf.data.formats.registry import detect_format, read_dataset
from unet_tf.data.formats.video import FrameSource, match_channels
from unet_tf.data.pipeline import prepare
from unet_tf.errors import UserError
from unet_tf.inference.predictor import load_predictor
from unet_tf.training.fit import fit, load_training_data


def one_step(cfg, **data):
    """Make ``cfg`` train for exactly one optimizer step."""
    cfg.train.epochs = 1
    cfg.data.steps_per_epoch = 1
    cfg.data.augment = ["hflip"]
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


# --- Cell Tracking Challenge ---------------------------------------------------------


def test_ctc_is_detected_and_keeps_uint16_instance_labels(tmp_path):
    root = write_ctc(tmp_path / "DIC-C2DH-HeLa")
    assert detect_format(root) == "ctc"
    samples = read_dataset(root, DataConfig(annotations="gt"))
    assert [s.name for s in samples] == ["01_t000", "01_t002", "02_t000", "02_t002"]
    assert samples[0].mask.dtype == np.uint16
    assert set(np.unique(samples[0].mask)) == {0, 1, 2, 3}  # cells stay apart
    assert samples[0].image.shape == (64, 64, 1) and samples[0].image.dtype == np.uint16


def test_ctc_uses_only_annotated_frames_gold_before_silver(tmp_path):
    root = write_ctc(tmp_path / "ctc", sequences=("01",))  # 5 frames, GT 0 2, ST 0-3
    silver = read_dataset(root, DataConfig(annotations="st"))
    assert [s.name for s in silver] == ["01_t000", "01_t001", "01_t002", "01_t003"]
    assert silver[0].mask.max() == 103
    both = {s.name: s.mask.max() for s in read_dataset(root, DataConfig(annotations="gt+st"))}
    assert both == {"01_t000": 3, "01_t001": 103, "01_t002": 3, "01_t003": 103}


def test_ctc_four_digit_frames_and_slice_masks(tmp_path):
    root = tmp_path / "ctc"
    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    stack = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16)
    tifffile.imwrite(root / "01" / "t0007.tif", stack)
    label = np.zeros((16, 16), np.uint16)
    label[4:8, 4:8] = 5
    tifffile.imwrite(root / "01_GT" / "SEG" / "man_seg_0007_002.tif", label)
    (sample,) = read_dataset(root, DataConfig(annotations="gt"))
    assert sample.name == "01_t0007_z002"
    np.testing.assert_array_equal(sample.image[..., 0], stack[2])


def test_ctc_sequences_and_val_sequences(tmp_path, tiny_config):
    root = write_ctc(tmp_path / "ctc", sequences=("01", "02", "03"))
    cfg = tiny_config(root)
    cfg.data.val_sequences = ["03"]
    train, val = load_training_data(cfg)
    assert {s.name[:2] for s in train} == {"01", "02"}
    assert {s.name[:2] for s in val} == {"03"}
    cfg.data.sequences = ["01"]
    train, val = load_training_data(cfg)
    assert {s.name[:2] for s in train} == {"01"} and len(val) == 4


@pytest.mark.parametrize(
    ("setup", "data", "message"),
    [
        ("nothing", {}, r"has no Cell Tracking Challenge sequences"),
        ("ok", {"sequences": ["05"]}, r"sequence\(s\) 05 not found .* it has 01, 02"),
        ("ok", {"sequences": ["01"], "val_sequences": ["01"]}, r"both in --sequences and"),
        ("no-gt", {"annotations": "gt"}, r"sequence 01 .* no masks in 01_GT/SEG/"),
        ("orphan", {}, r"1 mask\(s\) of sequence 01 have no frame.*man_seg003.tif"),
    ],
)
def test_ctc_errors(tmp_path, setup, data, message):
    root = tmp_path / "ctc"
    if setup == "nothing":
        (root / "01_GT" / "SEG").mkdir(parents=True)  # annotations but no frames
    else:
        write_ctc(root, gt_frames=() if setup == "no-gt" else (0, 2))
    if setup == "orphan":
        (root / "01" / "t003.tif").unlink()
    with pytest.raises(UserError, match=message):
        read_dataset(root, DataConfig(**data))


def test_ctc_mask_size_mismatches_are_listed_together(tmp_path):
    root = write_ctc(tmp_path / "ctc", sequences=("01",))
    for t in range(4):
        path = root / "01_ST" / "SEG" / f"man_seg{t:03d}.tif"
        tifffile.imwrite(path, np.zeros((10, 12), np.uint16))
    with pytest.raises(UserError) as err:
        read_dataset(root, DataConfig(annotations="st"))
    message = str(err.value)
    assert "4 of 4 files cannot be used" in message and "man_seg000.tif" in message
    assert "is 12x10 but its image t000.tif is 64x64" in message and "\n" not in message


def test_ctc_one_training_step_with_border_weights(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path / "cache"))
    cfg = one_step(
        tiny_config(write_ctc(tmp_path / "ctc"), loss="weighted-bce"),
        val_sequences=["02"],
        border_weights=True,
    )
    result = fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    # the reported Dice is the mean over the validation frames of 2TP / (2TP + FP + FN)
    predictor = load_predictor(tmp_path / "run")
    _, val = load_training_data(result.config)
    dices = []
    for sample in val:
        pred = predictor.predict(sample.image)[..., 0] > predictor.threshold
        truth = sample.mask > 0
        tp, fp, fn = (
            np.count_nonzero(a & b) for a, b in [(pred, truth), (pred, ~truth), (~pred, truth)]
        )
        dices.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    assert len(val) == 4
    assert result.metrics["validation"]["mean"]["dice"] == pytest.approx(np.mean(dices))
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert saved["val_sequences"] == ["02"] and saved["border_weights"] is True
    # 8 frames, but 02 repeats the masks of 01: the cache is keyed by content
    assert len(list((tmp_path / "cache" / "border-weights").glob("*.npy"))) == 4


# --- DRIVE ---------------------------------------------------------------------------


def test_drive_reads_images_vessels_and_fov(tmp_path):
    root = tmp_path / "DRIVE"
    write_drive(root / "training")
    write_drive(root / "test", numbers=(1, 2), subset="test")
    assert detect_format(root) == detect_format(root / "training") == "drive"
    samples = read_dataset(root, DataConfig())  # the root means training/
    assert [s.name for s in samples] == ["21_training", "22_training", "23_training"]
    s = samples[0]
    assert s.image.shape == (60, 64, 3) and s.mask.shape == (60, 64)
    assert s.fov.dtype == bool and 0.4 < s.fov.mean() < 0.8
    assert not (s.mask[~s.fov] > 0).any()
    test = read_dataset(root / "test", DataConfig())
    assert [t.name for t in test] == ["01_test", "02_test"]


def test_drive_fov_zeroes_the_loss_weight_outside(tmp_path, tiny_config):
    samples = read_dataset(write_drive(tmp_path / "d"), DataConfig())
    (item,) = prepare(samples[:1], tiny_config(), resize_to=None)
    np.testing.assert_array_equal(item.weight[..., 0], samples[0].fov.astype(np.float32))


def test_drive_missing_fov_masks_are_listed(tmp_path):
    root = write_drive(tmp_path / "d")
    for n in (21, 23):
        (root / "mask" / f"{n}_training_mask.gif").unlink()
    with pytest.raises(UserError) as err:
        read_dataset(root, DataConfig())
    message = str(err.value)
    assert message.startswith("2 DRIVE image(s) have no field-of-view mask")
    assert "21_training.tif, 23_training.tif" in message


def test_drive_corrupt_tiff_and_gif_are_listed(tmp_path):
    root = write_drive(tmp_path / "d")
    (root / "images" / "22_training.tif").write_bytes(b"II*\x00garbage")
    (root / "1st_manual" / "23_manual1.gif").write_bytes(b"GIF89a garbage")
    with pytest.raises(UserError) as err:
        read_dataset(root, DataConfig())
    message = str(err.value)
    assert "2 of 3 files cannot be used: 22_training.tif, 23_training.tif" in message
    assert "cannot read" in message and "22_training.tif" in message


def test_drive_one_training_step_on_patches(tmp_path, tiny_config):
    cfg = one_step(tiny_config(write_drive(tmp_path / "d")), patch=32, fg_prob=0.5)
    result = fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    (row,) = csv.DictReader((tmp_path / "run" / "history.csv").open())
    assert np.isfinite(float(row["loss"]))
    _, (sample,) = load_training_data(result.config)  # one of the three images validates
    predictor = load_predictor(tmp_path / "run")
    probs = predictor.predict(sample.image)
    assert sample.image.shape == (60, 64, 3) and probs.shape == (60, 64, 1)
    # scored inside the field of view only: Dice, and the vessel literature's scores
    pred = probs[..., 0][sample.fov] > predictor.threshold
    truth = sample.mask[sample.fov] > 0
    tp, fp, fn = (
        np.count_nonzero(a & b) for a, b in [(pred, truth), (pred, ~truth), (~pred, truth)]
    )
    scores = result.metrics["validation"]["mean"]
    assert scores["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert {"sensitivity", "specificity", "accuracy", "auc"} <= set(scores)


def test_real_drive_has_fov_for_every_image():
    samples = read_dataset(shared_path("data", "drive", "training"), DataConfig())
    assert len(samples) == 20
    assert all(s.fov is not None and s.fov.shape == (584, 565) for s in samples)


# --- video -----------------------------------------------------------------------------


def test_video_reads_annotated_frames_as_grey(tmp_path):
    video = write_video(tmp_path / "movie.avi")
    assert detect_format(video) == "video"
    samples = read_dataset(video, DataConfig())
    assert [s.name for s in samples] == ["movie_f00001", "movie_f00004", "movie_f00006"]
    s = samples[1]
    assert s.image.shape == (64, 64, 1)
    bright = s.image[..., 0] > 125
    assert (bright == (s.mask > 0)).mean() > 0.98  # frame 4 matches its own mask


def test_video_masks_option_and_tiff_stacks(tmp_path):
    video = write_video(tmp_path / "movie.avi", masks=False)
    folder = tmp_path / "annotations"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "7.png")
    cfg = DataConfig(data=str(video), masks=str(folder))
    assert [s.name for s in read_dataset(video, cfg)] == ["movie_f00007"]
    stack = write_tiff_stack(tmp_path / "stack.tif", n=6)
    samples = read_dataset(stack, DataConfig())
    assert len(samples) == 6 and samples[0].image.dtype == np.uint16


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("garbage", r"cannot open video .*broken.avi"),
        ("no-masks", r"no masks for video .*pass --masks DIR"),
        ("beyond", r"1 mask\(s\) .* frames the video does not have: frame_0099.png.* 8 frames"),
        ("unnumbered", r"have no frame number in their name: first.png"),
    ],
)
def test_video_errors(tmp_path, case, message):
    video = write_video(tmp_path / "broken.avi", masks=case != "no-masks")
    masks = tmp_path / "broken_masks"
    if case == "garbage":
        video.write_bytes(b"RIFF\x00\x00 this is not a video")
    if case == "beyond":
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(masks / "frame_0099.png")
    if case == "unnumbered":
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(masks / "first.png")
    with pytest.raises(UserError, match=message):
        read_dataset(video, DataConfig())


def test_match_channels():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 200
    assert match_channels(rgb, 1).shape == (4, 4, 1)
    assert match_channels(rgb[..., :1], 3).shape == (4, 4, 3)


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    """One training step on a video, reused by the prediction tests."""
    from unet_tf.config import RunConfig

    root = tmp_path_factory.mktemp("video")
    video = write_video(root / "movie.avi", annotated=(0, 2, 4, 6))
    cfg = RunConfig()
    cfg.data.data = str(video)
    cfg.data.size = 64
    cfg.model.base_filters, cfg.model.depth = 4, 2
    cfg.train.batch_size, cfg.train.precision = 2, "float32"
    one_step(cfg)
    fit(cfg, root / "run", verbose=0, log=lambda _: None)
    return root / "run", video


def test_video_one_training_step(video_run):
    run, _ = video_run
    assert (run / "model.keras").exists()


def test_predict_video_writes_masks_overlay_and_areas(video_run, tmp_path, capsys):
    run, video = video_run
    out = tmp_path / "out"
    assert main(["predict", str(run), str(video), "--out", str(out)]) == 0
    assert "movie.avi: wrote movie_mask.avi, movie_overlay.mp4, movie_areas.csv" in (
        capsys.readouterr().out
    )
    rows = list(csv.DictReader((out / "movie_areas.csv").open()))
    assert [int(r["frame"]) for r in rows] == list(range(8))
    assert set(rows[0]) == {"frame", "time_s", "foreground_px", "foreground_fraction", "objects"}
    for name in ("movie_mask.avi", "movie_overlay.mp4"):
        source = FrameSource(out / name)
        frames = list(source)
        assert len(frames) == 8 and frames[0].shape[:2] == (64, 64)
    mask_frames = list(FrameSource(out / "movie_mask.avi"))
    area = int((mask_frames[3] > 127).sum())
    assert area == int(rows[3]["foreground_px"])  # lossless mask video agrees with the CSV
    assert main(["predict", str(run), str(video), "--out", str(out)]) == 2  # no overwrite


def test_predict_tiff_stack_writes_a_mask_stack(video_run, tmp_path):
    run, _ = video_run
    stack = write_tiff_stack(tmp_path / "rec.tif", n=5)
    assert main(["predict", str(run), str(stack), "--out", str(tmp_path / "o")]) == 0
    masks = tifffile.imread(tmp_path / "o" / "rec_mask.tif")
    assert masks.shape == (5, 64, 64) and set(np.unique(masks)) <= {0, 255}


def test_unopenable_video_is_one_line_error(video_run, tmp_path, capsys):
    run, _ = video_run
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really")
    assert main(["predict", str(run), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open video") and err.count("\n") == 1


# --- folder and CLI ------------------------------------------------------------------


def test_folder_size_mismatches_are_listed_with_a_count(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=8)
    for i in range(7):
        Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / f"img {i:02d}.png")
    with pytest.raises(UserError) as err:
        read_dataset(root, DataConfig())
    message = str(err.value)
    assert (
        message.startswith("7 of 8 files cannot be used: img 00.png") and "(and 2 more)" in message
    )


@pytest.mark.parametrize(
    ("layout", "args", "message"),
    [
        ("ctc-empty", ["--format", "ctc"], "has no Cell Tracking Challenge sequences"),
        ("drive-nofov", [], "have no field-of-view mask"),
        ("folder", ["--val-sequences", "02"], "has no Cell Tracking Challenge sequences"),
        ("folder", ["--border-weights"], "needs --loss weighted-bce"),
        ("folder", ["--augment", "missing.yaml"], "augmentation file not found"),
    ],
)
def test_fit_bad_input_is_one_line(tmp_path, capsys, layout, args, message):
    root = tmp_path / "data"
    if layout == "ctc-empty":
        root.mkdir()
    elif layout == "drive-nofov":
        write_drive(root)
        for gif in (root / "mask").iterdir():
            gif.unlink()
    else:
        write_folder_dataset(root, n=4)
    code = main(["fit", "--data", str(root), "--run-dir", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_hela_jpeg_masks_with_spaces_read_as_folder():
    root = shared_path("data", "hela-dic")
    samples = read_dataset(root, DataConfig())
    assert detect_format(root) == "folder" and len(samples) == 39
    assert any(" " in s.name for s in samples)
    assert set(np.unique(np.concatenate([s.mask.ravel() for s in samples]))) <= {0, 1, 2}


def test_video_frames_decode_in_rgb_order(tmp_path):
    path = tmp_path / "colour.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32), True)
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[..., 2] = 220  # red in OpenCV's BGR
    for _ in range(2):
        writer.write(frame)
    writer.release()
    source = FrameSource(path)
    first = next(iter(source))
    assert not source.grey and first.shape == (32, 32, 3) and first[..., 0].mean() > 150


def test_ctc_border_weights_are_cached_per_image(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config(write_ctc(tmp_path / "ctc", sequences=("01",)), loss="weighted-bce")
    cfg.data.border_weights = True
    train, val = load_training_data(cfg)
    assert all(s.weight is not None and s.weight.shape == s.mask.shape for s in train + val)
    assert len(list(Path(tmp_path / "cache").rglob("*.npy"))) == len(train + val)


def test_cli_fit_on_ctc_with_sequence_annotation_and_yaml_options(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UNET_TF_CACHE", str(tmp_path / "cache"))
    root = write_ctc(tmp_path / "ctc")
    aug = tmp_path / "aug.yaml"
    aug.write_text("- hflip\n- elastic: {std: 4, p: 0.5}\n")
    run = tmp_path / "run"
    args = ["fit", "--data", str(root), "--sequences", "01", "--val-sequences", "02"]
    args += ["--annotations", "gt", "--border-weights", "--loss", "weighted-bce"]
    args += ["--augment", str(aug), "--size", "64", "--base-filters", "4", "--depth", "2"]
    args += ["--epochs", "1", "--steps-per-epoch", "1", "--precision", "float32"]
    assert main([*args, "--run-dir", str(run), "--quiet"]) == 0
    assert "on 2 image(s), validating on 2" in capsys.readouterr().out
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert saved["sequences"] == ["01"] and saved["annotations"] == "gt"
    assert saved["augment"] == ["hflip", {"elastic": {"std": 4, "p": 0.5}}]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["drive/training", "hela-dic"])
def test_real_data_trains_on_patches(dataset, tmp_path, tiny_config):
    """Real DRIVE (with its FOV) and real HeLa DIC go through fit on full-resolution patches."""
    data = shared_path("data", *dataset.split("/"))
    cfg = tiny_config(data)
    cfg.data.patch, cfg.data.fg_prob, cfg.data.val_split = 64, 0.33, 0.1
    cfg.train.epochs, cfg.data.steps_per_epoch = 1, 2
    result = fit(cfg, tmp_path / "run", verbose=0, log=lambda _: None)
    assert 0.0 <= result.metrics["validation"]["mean"]["dice"] <= 1.0
