"""``unet-tf plan``: the fingerprint measured by hand, each rule on hand-made fingerprints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import run_cli, write_folder_dataset

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError
from unet_tf.planning import parse_duration
from unet_tf.planning.fingerprint import Fingerprint, fingerprint
from unet_tf.planning.recipe import plan_lines
from unet_tf.planning.rules import derive_plan
from unet_tf.planning.timing import seconds_per_step, time_validation

BLOBS = Fingerprint(
    images=40,
    median_height=512,
    median_width=512,
    min_side=512,
    max_aspect=1.0,
    channels=1,
    bit_depth=8,
    intensity_percentiles=(0.0, 100.0, 255.0),
    intensity_spread=0.02,
    foreground_fraction=0.4,
    object_count=12,
    object_diameter=100.0,
    thin_score=0.02,
    instances=True,
    time_series=True,
    field_of_view=False,
)


def sample(mask: np.ndarray, image: np.ndarray | None = None) -> Sample:
    image = np.zeros((*mask.shape, 1), np.uint8) if image is None else image
    return Sample("x", image, mask)


def test_fingerprint_of_discs_and_of_lines_by_hand():
    yy, xx = np.mgrid[:128, :128]
    discs = np.zeros((128, 128), np.uint8)
    for cx in (30, 90):  # two discs of radius 12: equivalent diameter ~24 px
        discs[(yy - 64) ** 2 + (xx - cx) ** 2 <= 12**2] = 255
    fp = fingerprint([sample(discs)])
    assert fp.object_count == 2 and fp.object_diameter == pytest.approx(24, abs=1)
    assert fp.foreground_fraction == pytest.approx(2 * np.pi * 144 / 128**2, abs=0.005)
    assert not fp.thin and not fp.instances and fp.median_height == 128

    lines = np.zeros((128, 128), np.uint8)
    lines[:, 10:12] = lines[:, 60:62] = lines[:, 100:102] = 255  # 2 px wide: skeleton/area 1/2
    assert fingerprint([sample(lines)]).thin_score == pytest.approx(0.5, abs=0.03)
    # the rarer class is measured: thin background lines (ISBI membranes) count as thin
    assert fingerprint([sample(255 - lines)]).thin_score == pytest.approx(0.5, abs=0.03)

    labels = np.zeros((64, 64), np.uint16)
    labels[5:20, 5:20], labels[20:40, 5:20] = 7, 9  # touching cells with their own labels
    fp = fingerprint([sample(labels)], time_series=True)
    assert fp.instances and fp.object_count == 2 and fp.time_series


def test_blob_like_cells_resize_to_256_with_a_reason():
    plan = derive_plan(BLOBS)
    cfg = plan.config
    assert (cfg.data.size, cfg.data.patch) == (256, None)
    assert "stay 50 px" in plan.reasons["input"]  # 100 px at 512 -> 50 px at 256
    assert cfg.model.depth == 5 and cfg.train.batch_size == 4
    assert cfg.data.augment == ["hflip", "vflip", "rotate"]  # 40 images, even brightness
    assert "block" in plan.reasons["validation"]
    assert plan.inference == {"resize": 256, "tta": "flips"}


def test_thin_or_small_objects_train_on_patches():
    vessels = replace(BLOBS, thin_score=0.3, object_diameter=9.0, foreground_fraction=0.08)
    plan = derive_plan(vessels)
    assert (plan.config.data.size, plan.config.data.patch) == (256, 128)
    assert plan.config.data.fg_prob == 0.33 and "oversampling" in plan.reasons["fg_prob"]
    # Tiles at least 256 px: each is standardised alone, and a larger one is more typical.
    assert plan.inference == {"tile": 256, "overlap": 0.5, "tta": "flips"}
    assert plan.config.train.batch_size == 16  # 4 x 256^2 px per step at 128 px

    nuclei = replace(BLOBS, object_diameter=10.0, median_height=1024, median_width=1024)
    nuclei = replace(nuclei, min_side=1024)  # 10 px at 1024 -> 2.5 px at 256
    plan = derive_plan(nuclei)
    assert plan.config.data.patch == 96 and "shrink to 2 px" in plan.reasons["input"]
    assert (
        plan.inference["tile"] == 256
        and "tiles of 256 px (the 96 px patch" in plan.reasons["inference"]
    )

    squashed = replace(BLOBS, max_aspect=3.0)
    assert derive_plan(squashed).config.data.patch is not None


def test_an_object_size_trains_patches_sized_and_deep_for_the_rescaled_objects():
    base = RunConfig()
    base.data.object_size = 20.0
    plan = derive_plan(BLOBS, base)  # BLOBS alone resize to 256
    assert (plan.config.data.patch, plan.config.data.object_size) == (96, 20.0)
    assert "rescaled so that its objects are 20 px" in plan.reasons["input"]
    # Deep enough for 20 px objects (and the 96 px patch allows no more), not for 100 px.
    assert plan.config.model.depth == 3 and "~20 px" in plan.reasons["depth"]


def test_specks_under_2_percent_of_a_median_object_are_removed():
    plan = derive_plan(BLOBS)  # diameter 100 px: pi / 4 * 100^2 = 7854 px; 2% = 157 px
    assert plan.config.postprocess.min_size == 157
    assert "157 px" in plan.reasons["min_size"]
    assert derive_plan(replace(BLOBS, object_diameter=20.0)).config.postprocess.min_size == 6
    empty = replace(BLOBS, object_count=0, object_diameter=0.0)
    assert derive_plan(empty).config.postprocess.min_size == 0


def test_few_or_uneven_images_get_more_augmentation():
    plan = derive_plan(replace(BLOBS, images=12, intensity_spread=0.3))
    assert plan.config.data.augment[-2:] == ["brightness-contrast", "elastic"]


def test_budget_becomes_steps_at_the_measured_speed_and_narrows_a_slow_network():
    def timer(cfg: RunConfig) -> float:  # 32 filters: 2 s/step; 16 filters: 0.5 s/step
        return 2.0 if cfg.model.base_filters == 32 else 0.5

    roomy = derive_plan(BLOBS, budget_seconds=3600, seconds_per_step=timer)
    # 3600 s x 0.85 / 2 s = 1530 steps >= 1000: keep 32 filters; 40 x 0.8 / 4 = 8 -> 10 per epoch
    assert roomy.config.model.base_filters == 32 and roomy.seconds_per_step == 2.0
    assert roomy.config.data.steps_per_epoch == 10 and roomy.config.train.epochs == 153
    tight = derive_plan(BLOBS, budget_seconds=600, seconds_per_step=timer)
    # 600 x 0.85 / 2 = 255 steps < 1000: 16 filters, then 600 x 0.85 / 0.5 = 1020 steps
    assert tight.config.model.base_filters == 16 and "255 steps" in tight.reasons["base_filters"]
    assert tight.config.train.epochs == 102
    # 1800 x 0.85 / 2 = 765 steps: DRIVE's 30 minutes, where 16 filters scored better
    half_hour = derive_plan(BLOBS, budget_seconds=1800, seconds_per_step=timer)
    assert (
        half_hour.config.model.base_filters == 16
        and "765 steps" in half_hour.reasons["base_filters"]
    )
    saved = tight.to_config()
    assert saved.plan["seconds_per_step"] == 0.5 and saved.plan["fingerprint"]["images"] == 40
    # A 20 s validation: epochs of >= 20 x 0.8 / 0.2 / 2 = 40 steps; 3060 s / 100 s = 30
    slow = derive_plan(BLOBS, None, 3600, timer, lambda cfg: 20.0)
    assert (slow.config.train.epochs, slow.config.data.steps_per_epoch) == (30, 40)
    assert "20 s per validation" in slow.reasons["epochs"]


def test_a_pretrained_encoder_keeps_its_own_levels_and_filters():
    timed: list[tuple[int, int | None]] = []

    def timer(cfg: RunConfig) -> float:  # slow enough that a scratch U-Net would narrow
        timed.append((cfg.model.base_filters, cfg.model.depth))
        return 2.0

    base = RunConfig()
    base.model.backbone = "vgg16"
    plan = derive_plan(BLOBS, base, budget_seconds=600, seconds_per_step=timer)
    # The scratch rules would set depth 5 and 16 filters; the encoder refuses a depth.
    assert plan.config.model.depth is None and plan.config.model.base_filters == 32
    assert plan.reasons["depth"] == "the vgg16 encoder's own levels"
    assert timed == [(32, None)]  # timed once, as it trains: no narrower copy to time
    scratch = derive_plan(BLOBS, budget_seconds=600, seconds_per_step=timer)
    assert (scratch.config.model.depth, scratch.config.model.base_filters) == (5, 16)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("20m", 1200), ("1h30m", 5400), ("15", 900)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "0m", "5x"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(UserError, match="--budget"):
        parse_duration(text)


def test_a_step_is_timed_for_real():
    cfg = RunConfig()
    cfg.data.size, cfg.model.base_filters, cfg.model.depth = 64, 4, 2
    cfg.train.batch_size, cfg.train.precision = 2, "float32"
    assert 0 < seconds_per_step(cfg, channels=1, steps=2) < 30
    assert time_validation(cfg, 1, []) == 0.0
    cfg.data.patch = 32  # full-size validation images one by one, each shape traced first
    assert 0 < time_validation(cfg, 1, [(48, 40), (48, 40), (64, 64)]) < 30


def test_cli_plan_writes_a_config_that_fit_accepts(tmp_path, capsys):
    data = write_folder_dataset(tmp_path / "data", n=6, size=64)
    out = tmp_path / "plan.yaml"
    code, stdout, err = run_cli(capsys, "plan", data, "--out", out)
    assert code == 0, err
    assert "6 image(s), median 64x64 px" in stdout and "input" in stdout
    cfg = RunConfig.load(out)
    cfg.validate()
    assert cfg.plan["reasons"]["input"] and cfg.data.data == str(data)
    code, _, err = run_cli(capsys, "plan", data, "--out", out)
    assert code == 2 and "already exists" in err


def test_instance_masks_plan_the_separating_target_that_fit_would_pick():
    plan = derive_plan(BLOBS)  # 12 labelled cells per image
    assert plan.config.data.target == "distance"
    assert "one by one" in plan.reasons["target"] and "distance" in plan.reasons["target"]
    # Nuclei under 40 px across (DSB 2018's are ~19 px) add the contact channel.
    nuclei = derive_plan(replace(BLOBS, object_diameter=19.0))
    assert nuclei.config.data.target == "contact"
    assert "~19 px are under 40 px" in nuclei.reasons["target"]
    assert "contact target's watershed" in nuclei.reasons["threshold"]
    assert derive_plan(replace(BLOBS, object_diameter=40.0)).config.data.target == "distance"
    pixel_masks = derive_plan(replace(BLOBS, instances=False))
    assert (
        pixel_masks.config.data.target == "binary"
        and "pixel masks" in pixel_masks.reasons["target"]
    )
    base = RunConfig()
    base = replace(base, model=replace(base.model, num_classes=3))
    assert derive_plan(BLOBS, base).config.data.target == "binary"


def test_the_contact_target_gets_a_wider_band_and_other_targets_keep_theirs():
    nuclei = derive_plan(replace(BLOBS, object_diameter=19.0))
    assert nuclei.config.data.border_width == 4
    assert nuclei.reasons["border_width"].startswith("4 px: the contact band's radius")
    assert "it scores foreground and contact, cross-entropy the map" in nuclei.reasons["loss"]
    cells = derive_plan(BLOBS)  # the distance target has no band: no reason printed
    assert cells.config.data.border_width is None and "border_width" not in cells.reasons
    # --target decides which target trains, so which band the plan gives.
    base = RunConfig()
    asked = derive_plan(BLOBS, replace(base, data=replace(base.data, target="contact")))
    assert asked.config.data.border_width == 4
    boundary = derive_plan(BLOBS, replace(base, data=replace(base.data, target="boundary")))
    assert boundary.config.data.border_width == 2
    assert boundary.reasons["border_width"] == "2 px: the boundary target's band"
    # --border-width wins, and the reason says the width that trains.
    given = derive_plan(
        BLOBS, replace(base, data=replace(base.data, target="contact", border_width=3))
    )
    assert given.config.data.border_width == 3
    assert given.reasons["border_width"] == "3 px: the contact target's band"


def test_binary_masks_plan_a_threshold_chosen_on_validation():
    assert derive_plan(replace(BLOBS, instances=False)).config.train.threshold == "auto"
    plan = derive_plan(BLOBS)  # the distance target: chosen with its seed height
    assert plan.config.train.threshold == "auto" and "watershed" in plan.reasons["threshold"]


def test_without_a_budget_slow_validation_gets_fewer_longer_epochs_of_the_same_steps():
    from unet_tf.planning.rules import same_steps_epochs

    # 40 x 10 steps of 1 s with an 18 s validation: 72-step epochs, 400 / 72 -> 6 epochs
    assert same_steps_epochs(40, 10, 1.0, 18.0) == (6, 72)
    assert same_steps_epochs(40, 10, 1.0, 2.0) == (40, 10)  # 2 s of 12: kept


def test_the_console_shows_each_choice_once_with_the_reason_that_trains():
    plan = derive_plan(BLOBS)
    lines = plan_lines(plan)
    assert sum(line.split()[0] == "epochs" for line in lines[1:]) == 1
    revised = plan_lines(plan, revised={"epochs": "6 epochs x 72 steps, validation is slow"})
    epochs = [line for line in revised[1:] if line.split()[0] == "epochs"]
    assert epochs == ["  epochs        6 epochs x 72 steps, validation is slow"]
    assert len(revised) == len(lines)
    assert not any(line.split()[0] == "epochs" for line in plan_lines(plan, skip=("epochs",))[1:])
