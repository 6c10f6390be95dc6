"""The checks every encoder must pass, like smp's ``BaseEncoderTester``.

One subclass per encoder (``test_<encoder>.py``) sets the class attributes; the
networks are built once per class, small (minimum size, base_filters 4 where the
architecture has that knob), and shared by the tests that only read them.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any, ClassVar

import h5py
import keras
import numpy as np
import pytest
from conftest import SHARED

import unet_tf  # noqa: F401  (registers the custom objects a saved model needs)
from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model, min_input_size, resolve_model_config
from unet_tf.models.blocks import BATCHNORM_MOMENTUM
from unet_tf.models.encoders import ENCODERS

WEIGHTS = SHARED / "weights"


def weight_values(layers) -> list[np.ndarray]:
    return [np.array(w) for layer in layers for w in layer.weights]


def file_kernel(path: Path, layer: str) -> np.ndarray:
    """A layer's kernel as stored in a Keras .h5 weights file."""
    with h5py.File(path, "r") as f:
        group = f[layer]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        return np.array(group[next(n for n in names if "kernel" in n)])


def momenta(model: keras.Model) -> set[float]:
    """The momentum of every BatchNormalization in ``model``, nested encoder included."""
    found = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.add(layer.momentum)
        elif isinstance(layer, keras.Model):
            found |= momenta(layer)
    return found


def raw_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, *shape)).astype(np.float32)


class EncoderTester:
    backbone: ClassVar[str]
    min_size: ClassVar[int]
    odd_shape: ClassVar[tuple[int, int]]  # height, width not multiples of 32
    depth: ClassVar[int] = 5  # what resolve_model_config fills in
    too_small: ClassVar[str]  # the UserError below min_size, as a regex
    fields: ClassVar[dict[str, Any]] = {}  # ModelConfig fields for a small network
    grey_layer: ClassVar[str] = "grey_to_rgb"  # the layer taking grey input, repeat adapter
    rgb_layer: ClassVar[str] = "channel_adapter"  # the conv adapter, for RGB input
    weights_file: ClassVar[str | None] = None  # local ImageNet weights in WEIGHTS
    weights_layer: ClassVar[str | None] = None  # an encoder layer those weights set

    def config(self, **fields) -> ModelConfig:
        base = {"backbone": self.backbone, "in_channels": 1, "encoder_weights": "none"}
        return ModelConfig(**{**base, **self.fields, **fields})

    def build_grey(self) -> keras.Model:
        """Grey input through the repeat adapter, encoder frozen."""
        return build_model(self.config(freeze=True), self.min_size)

    @pytest.fixture(scope="class")
    def grey(self) -> keras.Model:
        return self.build_grey()

    @pytest.fixture(scope="class")
    def rgb(self) -> keras.Model:
        """RGB input through the learnable 1x1 adapter, encoder trainable."""
        return build_model(self.config(in_channels=3, input_adapter="conv"), self.min_size)

    def test_min_and_odd_sizes_give_float32_sigmoid_probabilities(self, grey):
        head = grey.layers[-1]
        assert head.get_config()["activation"] == "sigmoid"
        assert head.dtype_policy.name == "float32"
        for shape in [(self.min_size, self.min_size), self.odd_shape]:
            probs = np.asarray(grey(raw_image((*shape, 1))))
            assert probs.shape == (1, *shape, 1) and probs.dtype == np.float32
            assert probs.min() >= 0.0 and probs.max() <= 1.0

    def test_grey_and_rgb_inputs(self, grey, rgb):
        assert grey.input_shape == (None, None, None, 1) and grey.get_layer(self.grey_layer)
        assert rgb.input_shape == (None, None, None, 3) and rgb.get_layer(self.rgb_layer)
        assert rgb(raw_image((*self.odd_shape, 3))).shape == (1, *self.odd_shape, 1)

    def test_freeze_fixes_the_encoder_and_runs_its_batchnorm_in_inference_mode(self, grey, rgb):
        encoder = grey.get_layer("encoder")
        assert not encoder.trainable_weights and rgb.get_layer("encoder").trainable_weights
        decoder_bn_stats = sum(
            int(np.prod(w.shape))
            for layer in grey.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            for w in layer.non_trainable_weights
        )
        frozen = sum(int(np.prod(w.shape)) for w in grey.non_trainable_weights)
        trainable = sum(int(np.prod(w.shape)) for w in grey.trainable_weights)
        assert frozen == encoder.count_params() + decoder_bn_stats  # all of the network
        assert trainable == grey.count_params() - frozen
        before = weight_values(encoder.layers)
        x = np.random.default_rng(0).uniform(-100, 100, (2, self.min_size, self.min_size, 3))
        as_training = [np.asarray(f) for f in encoder(x.astype(np.float32), training=True)]
        for old, new in zip(before, weight_values(encoder.layers), strict=True):
            np.testing.assert_array_equal(old, new)  # moving statistics included
        for a, b in zip(as_training, encoder(x.astype(np.float32), training=False), strict=True):
            np.testing.assert_array_equal(a, np.asarray(b))

    def test_min_input_size_is_honoured(self):
        assert min_input_size(self.config()) == self.min_size
        with pytest.raises(UserError, match=self.too_small):
            build_model(self.config(), self.min_size - 1)

    def test_resolve_fills_in_the_depth_without_touching_the_config(self):
        cfg = self.config()
        resolved = resolve_model_config(cfg, self.min_size)
        assert resolved.depth == self.depth and resolved.encoder_weights_md5 is None
        assert cfg == self.config()  # a copy, not the argument
        assert resolve_model_config(resolved, self.min_size) == resolved

    def test_save_and_reload_give_identical_outputs(self, grey, tmp_path):
        grey.save(tmp_path / "model.keras")
        reloaded = keras.saving.load_model(tmp_path / "model.keras")  # after `import unet_tf`
        image = raw_image((*self.odd_shape, 1), seed=1)
        np.testing.assert_array_equal(np.asarray(reloaded(image)), np.asarray(grey(image)))
        # fine-tuned or not, every BatchNorm keeps the short-run momentum (models.blocks)
        assert momenta(grey) == momenta(reloaded) == {BATCHNORM_MOMENTUM}

    def test_imagenet_md5_is_the_one_keras_checks_its_download_against(self):
        spec = ENCODERS.get(self.backbone)
        assert f'"{spec.imagenet_md5}"' in inspect.getsource(inspect.getmodule(spec.constructor))
        resolved = resolve_model_config(self.config(encoder_weights="imagenet"), self.min_size)
        assert resolved.encoder_weights_md5 == spec.imagenet_md5

    def test_local_imagenet_weights_are_loaded_and_their_md5_recorded(self, grey):
        path = WEIGHTS / (self.weights_file or f"{self.backbone}_imagenet_notop.h5")
        if not path.is_file():
            pytest.skip(f"no local ImageNet weights for {self.backbone} at {path}")
        cfg = self.config(encoder_weights=str(path))
        model = build_model(cfg, self.min_size)
        kernel = np.array(model.get_layer("encoder").get_layer(self.weights_layer).kernel)
        np.testing.assert_array_equal(kernel, file_kernel(path, self.weights_layer))
        random = np.array(grey.get_layer("encoder").get_layer(self.weights_layer).kernel)
        assert not np.array_equal(kernel, random)
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        assert resolve_model_config(cfg, self.min_size).encoder_weights_md5 == md5
        assert cfg.encoder_weights_md5 is None  # build_model leaves its argument alone
