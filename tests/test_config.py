"""Configuration: YAML round trip, unknown keys, validation, run-dir rules."""

from __future__ import annotations

import pytest

from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.rundir import config_differences, open_run_dir


def test_yaml_round_trip(tmp_path):
    cfg = RunConfig()
    cfg.model.depth = 3
    cfg.data.augment = ["vflip"]
    cfg.train.threshold = "auto"
    cfg.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == cfg


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epocs: 3\n")
    with pytest.raises(UserError, match=r"unknown setting.*epocs.*valid ones"):
        RunConfig.load(tmp_path / "c.yaml")


def test_invalid_values_are_rejected():
    """Named choices are checked against their registries when the config is resolved."""
    from unet_tf.training.resolve import check_choices

    cfg = RunConfig()
    cfg.train.loss = "mse"
    with pytest.raises(UserError, match=r"unknown loss 'mse' \(--loss\); choose one of bce"):
        check_choices(cfg)


@pytest.mark.parametrize(
    ("backbone", "block", "message"),
    [
        ("none", "dense", r"block 'dense' is not one of \('plain', 'residual'\)"),
        ("sm:resnet34", "residual", r"segmentation-models' \(sm:\) has its own blocks"),
    ],
)
def test_blocks_are_checked(backbone, block, message):
    cfg = RunConfig()
    cfg.model.backbone, cfg.model.block = backbone, block
    with pytest.raises(UserError, match=message):
        cfg.validate()
    cfg.model.backbone = "vgg16"  # a Keras encoder's decoder takes either block
    cfg.model.block = "residual"
    cfg.validate()


def test_attention_gates_only_unet_tfs_own_decoders():
    cfg = RunConfig()
    cfg.model.backbone, cfg.model.attention = "sm:resnet34", True
    with pytest.raises(UserError, match=r"segmentation-models' \(sm:\) has none"):
        cfg.validate()
    for backbone in ("none", "vgg16"):
        cfg.model.backbone = backbone
        cfg.validate()


def test_default_epochs_depend_on_backbone():
    cfg = RunConfig()
    assert cfg.epochs == 40
    cfg.model.backbone = "vgg16"
    assert cfg.epochs == 20


def test_differences_ignore_resolved_fields():
    saved, requested = RunConfig(), RunConfig()
    saved.model.in_channels, saved.model.depth, saved.train.precision = 1, 4, "mixed_bfloat16"
    assert config_differences(saved, requested) == []
    requested.train.lr = 0.1
    assert config_differences(saved, requested) == ["train.lr: 0.001 saved, 0.1 requested"]


def test_run_dir_rules(tmp_path):
    run = tmp_path / "run"
    cfg = RunConfig()
    with open_run_dir(run, cfg, overwrite=False) as opened:
        assert (opened.work, opened.resumed) == (run, False)
    cfg.save(run / "config.yaml")
    with open_run_dir(run, cfg, overwrite=False) as opened:
        assert opened.resumed  # unfinished: resume
    (run / "metrics.json").write_text("{}")
    with (
        pytest.raises(UserError, match="already holds a finished run"),
        open_run_dir(run, cfg, False),
    ):
        pass
    with open_run_dir(run, cfg, overwrite=True) as opened:
        # the replacement is staged beside the finished run, which survives until publish
        assert opened.work != run and not opened.resumed
        assert (run / "metrics.json").exists()
        opened.publish()
    assert not (run / "metrics.json").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a unet-tf run"), open_run_dir(other, cfg, False):
        pass
    assert (other / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("focal_alpha", 1.5, r"focal_alpha \(--focal-alpha\) must be in \[0, 1\]"),
        ("focal_gamma", -1.0, r"focal_gamma \(--focal-gamma\) must be 0 or more"),
        ("logdice_weight", 0.0, r"logdice_weight \(--logdice-weight\) must be positive"),
    ],
)
def test_loss_hyper_parameters_are_range_checked(field, value, message):
    cfg = RunConfig()
    setattr(cfg.train, field, value)
    with pytest.raises(UserError, match=message):
        cfg.validate()


def test_cli_sets_the_alpha_of_focal_logdice(tmp_path, capsys):
    from conftest import TINY_FIT, run_cli, write_folder_dataset

    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", data, "--loss", "focal-logdice", "--logdice-weight", "2.5"]
    code, _, err = run_cli(capsys, *args, "--epochs", "1", "--run-dir", run, *TINY_FIT)
    assert code == 0, err
    assert RunConfig.load(run / "config.yaml").train.logdice_weight == 2.5
    code, _, err = run_cli(capsys, *args[:-1], "-1", "--run-dir", tmp_path / "bad", *TINY_FIT)
    assert code == 2 and "logdice_weight (--logdice-weight) must be positive" in err
