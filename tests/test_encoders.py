"""Pretrained encoders: input layers, skip tables, odd sizes, freezing, weights, phases, sm."""

from __future__ import annotations

import csv
import hashlib
import sys

import h5py
import keras
import numpy as np
import pytest
from conftest import shared_path, write_folder_dataset

import unet_tf.training.fit as training
from unet_tf.cli.main import main
from unet_tf.config import ModelConfig, RunConfig
from unet_tf.errors import UserError
from unet_tf.export.exporter import export_savedmodel
from unet_tf.inference.predictor import load_predictor
from unet_tf.models import build_model, min_input_size
from unet_tf.models.encoders import ENCODERS, keras_cache_path
from unet_tf.models.input_layers import ByteRange, PixelAffine, adapt_channels, affine_of
from unet_tf.models.sm import load_options
from unet_tf.training.phases import training_phases

VGG16 = "vgg16_imagenet_notop.h5"
RESNET50 = "resnet50_imagenet_notop.h5"


def model_config(backbone: str, **fields) -> ModelConfig:
    cfg = ModelConfig(backbone=backbone, in_channels=1, encoder_weights="none")
    for key, value in fields.items():
        setattr(cfg, key, value)
    return cfg


def weight_values(layers) -> list[np.ndarray]:
    return [np.array(w) for layer in layers for w in layer.weights]


def file_kernel(path, layer: str) -> np.ndarray:
    """A layer's kernel as stored in a Keras .h5 weights file."""
    with h5py.File(path, "r") as f:
        group = f[layer]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        return np.array(group[next(n for n in names if "kernel" in n)])


# --- input layers -----------------------------------------------------------------


def test_byte_range_keeps_8bit_scales_unit_floats_and_stretches_16bit():
    img8 = np.array([10.0, 200.0, 255.0, 3.0], np.float32).reshape(1, 2, 2, 1)
    unit = np.array([0.0, 0.5, 1.0, 0.25], np.float32).reshape(1, 2, 2, 1)
    img16 = np.array([1000.0, 3000.0, 5000.0, 2000.0], np.float32).reshape(1, 2, 2, 1)
    out = ByteRange()(np.concatenate([img8, unit, img16])).numpy().reshape(3, 4)
    np.testing.assert_allclose(out[0], [10, 200, 255, 3])
    np.testing.assert_allclose(out[1], [0, 127.5, 255, 63.75])
    np.testing.assert_allclose(out[2], [0, 127.5, 255, 63.75], rtol=1e-6)


@pytest.mark.parametrize(
    "module", [keras.applications.vgg16, keras.applications.inception_resnet_v2]
)
def test_pixel_affine_equals_keras_preprocess_input(module):
    """caffe (RGB->BGR minus the mean) and tf ([-1, 1]) modes, exactly as Keras does them."""
    matrix, bias = affine_of(module.preprocess_input)
    rgb = np.random.default_rng(1).uniform(0, 255, (2, 5, 7, 3)).astype(np.float32)
    got = PixelAffine(matrix, bias)(rgb).numpy()
    np.testing.assert_allclose(got, module.preprocess_input(rgb.copy()), atol=1e-4)


def test_conv_adapter_starts_as_repeat_and_other_channel_counts_need_it():
    grey = keras.Input((None, None, 1))
    image = np.random.default_rng(2).uniform(0, 255, (1, 8, 8, 1)).astype(np.float32)
    repeat = keras.Model(grey, adapt_channels(grey, 1, "repeat", "vgg16"))
    conv = keras.Model(grey, adapt_channels(grey, 1, "conv", "vgg16"))
    np.testing.assert_allclose(conv(image), repeat(image), rtol=1e-6)
    np.testing.assert_allclose(repeat(image)[..., 2], image[..., 0])
    two = keras.Input((None, None, 2))
    with pytest.raises(UserError, match=r"takes 1 .* or 3 .* channels.*--input-adapter conv"):
        adapt_channels(two, 2, "repeat", "vgg16")
    assert keras.Model(two, adapt_channels(two, 2, "conv", "vgg16")).output_shape[-1] == 3


# --- architecture ------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["vgg16", "resnet50"])
def test_any_size_including_odd_ones(backbone):
    """200x300 is not a multiple of 32: the decoder resizes to every skip."""
    model = build_model(model_config(backbone), 256)
    image = np.random.default_rng(0).integers(0, 256, (1, 200, 300, 1)).astype(np.float32)
    probs = np.asarray(model(image))
    assert probs.shape == (1, 200, 300, 1) and probs.dtype == np.float32
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    assert min_input_size(model_config(backbone)) == 32


def test_inceptionresnetv2_stable_skip_names_paper_sizes_and_odd_sizes():
    """The stem skips get explicit names however many layers were built before."""
    keras.layers.Activation("relu")  # shifts Keras's automatic names
    model = build_model(model_config("inceptionresnetv2"), 256)
    encoder = model.get_layer("encoder")
    names = [t._keras_history.operation.name for t in encoder.outputs]
    assert names == [
        "stem_conv1_ac",
        "stem_conv5_ac",
        "block35_10_ac",
        "block17_20_ac",
        "conv_7b_ac",
    ]
    sizes = [f.shape[1] for f in encoder(np.zeros((1, 256, 256, 3), np.float32))]
    assert sizes == [127, 60, 29, 14, 6]
    image = np.random.default_rng(0).integers(0, 256, (1, 200, 300, 1)).astype(np.float32)
    assert model(image).shape == (1, 200, 300, 1)
    assert min_input_size(model_config("inceptionresnetv2")) == 75


def test_skip_tables_match_the_issue():
    assert ENCODERS["vgg16"].skips == (
        "block1_conv2",
        "block2_conv2",
        "block3_conv3",
        "block4_conv3",
        "block5_conv3",
    )
    assert ENCODERS["vgg16"].bottleneck == "block5_pool"
    assert ENCODERS["resnet50"].skips[1:] == (
        "conv1_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
    )
    assert ENCODERS["resnet50"].bottleneck == "conv5_block3_out"


def test_build_rejects_too_small_inputs_and_depth():
    with pytest.raises(UserError, match=r"too small for the inceptionresnetv2 encoder.*75 px"):
        build_model(model_config("inceptionresnetv2"), 64)
    with pytest.raises(UserError, match="drop --depth 3"):
        build_model(model_config("vgg16", depth=3), 64)


# --- freezing ----------------------------------------------------------------------


def test_freeze_counts_and_batchnorm_in_inference_mode():
    """Frozen ResNet50: only the decoder trains, and BatchNorm uses its moving statistics."""
    model = build_model(model_config("resnet50", freeze=True), 64)
    encoder = model.get_layer("encoder")
    encoder_params = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    ).count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    decoder_bn_stats = sum(
        int(np.prod(w.shape))
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.non_trainable_weights
    )
    assert frozen == encoder_params + decoder_bn_stats
    assert trainable == model.count_params() - frozen
    assert not any(w.trainable for w in encoder.weights)
    before = weight_values(encoder.layers)
    x = np.random.default_rng(0).uniform(-100, 100, (2, 64, 64, 3)).astype(np.float32)
    as_training = [np.asarray(f) for f in encoder(x, training=True)]
    for old, new in zip(before, weight_values(encoder.layers), strict=True):
        np.testing.assert_array_equal(old, new)  # moving statistics included
    for a, b in zip(as_training, encoder(x, training=False), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_frozen_weights_are_bit_identical_after_a_fit_step():
    cfg = RunConfig()
    cfg.model = model_config("vgg16", freeze=True)
    cfg.train.precision = "float32"
    model = build_model(cfg.model, 32)
    encoder = model.get_layer("encoder")
    before = weight_values(encoder.layers)
    decoder_before = np.array(model.get_layer("dec1_conv1").kernel)
    training.compile_model(model, cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 32, 32, 1)).astype(np.float32)
    y = (rng.random((2, 32, 32, 1)) > 0.5).astype(np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    for old, new in zip(before, weight_values(encoder.layers), strict=True):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(decoder_before, model.get_layer("dec1_conv1").kernel)


def test_freeze_epochs_phases():
    cfg = RunConfig()
    cfg.model.backbone = "vgg16"
    cfg.model.freeze_epochs = 3
    cfg.train.epochs = 10
    cfg.train.lr = 2e-3
    frozen, tuning = training_phases(cfg)
    assert (frozen.start, frozen.end, frozen.lr, frozen.unfreeze) == (0, 3, 2e-3, False)
    assert (tuning.start, tuning.end, tuning.unfreeze) == (3, 10, True)
    assert tuning.lr == pytest.approx(2e-4)
    cfg.train.fine_tune_lr = 5e-5
    assert training_phases(cfg)[1].lr == 5e-5
    cfg.model.freeze_epochs = 10
    with pytest.raises(UserError, match=r"freeze_epochs must be in \[0, 10\)"):
        cfg.validate()
    cfg.model.freeze_epochs, cfg.model.freeze = 3, True
    with pytest.raises(UserError, match="choose one"):
        cfg.validate()
    scratch = RunConfig()
    scratch.model.freeze = True
    with pytest.raises(UserError, match="need a pretrained --backbone"):
        scratch.validate()


def test_default_epochs_depend_on_the_backbone():
    cfg = RunConfig()
    assert cfg.epochs == 40
    cfg.model.backbone = "resnet50"
    assert cfg.epochs == 20


class Crash(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


@pytest.mark.slow
def test_freeze_epochs_via_cli_resumes_in_either_phase_then_reloads_and_exports(
    tmp_path, monkeypatch
):
    """Crash in the frozen phase, then in the fine-tuning phase: each epoch runs once."""
    data = write_folder_dataset(tmp_path / "data", n=4, size=64)
    run = tmp_path / "run"
    args = ["fit", "--data", str(data), "--backbone", "vgg16", "--encoder-weights", "none"]
    args += ["--freeze-epochs", "2", "--epochs", "4", "--size", "40", "--batch-size", "2"]
    args += ["--steps-per-epoch", "1", "--precision", "float32", "--quiet"]
    args += ["--input-adapter", "conv", "--run-dir", str(run)]
    original = training.make_callbacks
    for crash_at in (0, 2):
        monkeypatch.setattr(
            training, "make_callbacks", lambda *a, c=crash_at, **k: [*original(*a, **k), Crash(c)]
        )
        with pytest.raises(RuntimeError, match="simulated crash"):
            main(args)
    monkeypatch.setattr(training, "make_callbacks", original)
    assert main(args) == 0
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [r["epoch"] for r in history] == ["0", "1", "2", "3"]
    # the step schedule over 4 epochs (x0.75 from epoch 2): from lr, then from lr / 10
    assert [float(r["learning_rate"]) for r in history] == pytest.approx(
        [1e-3, 1e-3, 7.5e-5, 5.625e-5]
    )
    assert not (run / "checkpoints" / "backup").exists()
    saved = RunConfig.load(run / "config.yaml")
    assert (saved.model.freeze_epochs, saved.model.depth, saved.model.input_adapter) == (
        2,
        5,
        "conv",
    )
    predictor = load_predictor(run)
    image = np.random.default_rng(0).integers(0, 256, (90, 77, 1)).astype(np.uint8)
    assert predictor.predict(image).shape == (90, 77, 1)
    assert export_savedmodel(predictor, tmp_path / "export") < 1e-3


# --- weights -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backbone", "filename", "layer"),
    [("vgg16", VGG16, "block1_conv1"), ("resnet50", RESNET50, "conv1_conv")],
)
def test_real_imagenet_kernel_equals_the_file_and_md5_is_recorded(backbone, filename, layer):
    path = shared_path("weights", filename)
    cfg = model_config(backbone, encoder_weights=str(path))
    model = build_model(cfg, 64)
    kernel = np.array(model.get_layer("encoder").get_layer(layer).kernel)
    np.testing.assert_array_equal(kernel, file_kernel(path, layer))
    assert cfg.encoder_weights_md5 == hashlib.md5(path.read_bytes()).hexdigest()


def test_offline_imagenet_is_one_line_naming_the_file(monkeypatch):
    spec = ENCODERS["vgg16"]
    if keras_cache_path(spec.weights_file).exists():
        pytest.skip("the ImageNet file is cached here, so nothing is downloaded")
    for var in ("https_proxy", "HTTPS_PROXY"):  # a closed port: offline wherever this runs
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(UserError) as info:
        build_model(model_config("vgg16", encoder_weights="imagenet"), 64)
    message = str(info.value)
    assert "\n" not in message
    assert "no ImageNet weights could be fetched for vgg16" in message
    assert spec.weights_file in message and "--encoder-weights PATH" in message


def test_missing_or_wrong_weights_file(tmp_path):
    with pytest.raises(UserError, match="encoder weights file not found"):
        build_model(model_config("vgg16", encoder_weights=str(tmp_path / "nope.h5")), 64)
    wrong = shared_path("weights", RESNET50)
    with pytest.raises(UserError, match=f"cannot load {wrong} into the vgg16 encoder"):
        build_model(model_config("vgg16", encoder_weights=str(wrong)), 64)


# --- end to end --------------------------------------------------------------------


def test_offline_cli_error_exits_2(tmp_path, monkeypatch, capsys):
    if keras_cache_path(ENCODERS["resnet50"].weights_file).exists():
        pytest.skip("the ImageNet file is cached here, so nothing is downloaded")
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    data = write_folder_dataset(tmp_path / "data", n=3, size=64)
    args = ["fit", "--data", str(data), "--backbone", "resnet50", "--size", "64"]
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: no ImageNet weights")


# --- segmentation-models -----------------------------------------------------------


def test_sm_unet_builds_freezes_and_trains_one_step(tmp_path):
    pytest.importorskip("segmentation_models")
    cfg = RunConfig()
    cfg.model = model_config("sm:resnet18", freeze=True)
    cfg.train.precision = "float32"
    cfg.train.loss = "focal"
    model = build_model(cfg.model, 64)
    assert model.output.dtype == "float32" and cfg.model.depth == 5
    assert len(model.trainable_weights) < len(model.weights)
    training.compile_model(model, cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64, 64, 1)).astype(np.float32)
    y = (rng.random((2, 64, 64, 1)) > 0.5).astype(np.float32)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    odd = rng.integers(0, 256, (1, 50, 70, 1)).astype(np.float32)
    probs = np.asarray(model(odd))
    assert probs.shape == (1, 50, 70, 1)
    model.save(tmp_path / "sm.keras")
    reloaded = keras.saving.load_model(tmp_path / "sm.keras", **load_options("sm:resnet18"))
    np.testing.assert_allclose(np.asarray(reloaded(odd)), probs, atol=1e-6)
    assert reloaded.loss.name == "focal"


def test_sm_refuses_densenet_and_unknown_names():
    pytest.importorskip("segmentation_models")
    with pytest.raises(UserError, match=r"densenet121.*does not work on Keras 3"):
        build_model(model_config("sm:densenet121"), 64)
    with pytest.raises(UserError, match="unknown segmentation-models backbone 'resnet9'"):
        build_model(model_config("sm:resnet9"), 64)


def test_sm_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "segmentation_models", None)  # import now fails
    with pytest.raises(UserError, match=r"pip install unet-tf\[sm\]"):
        build_model(model_config("sm:resnet34"), 64)
