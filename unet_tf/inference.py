"""From raw images of any size to probability maps of the same size.

A :class:`Predictor` wraps a network (a Keras model or a SavedModel's raw endpoint)
with what the run's config says about it: a model trained on images resized to
``size`` sees its inputs resized the same way and its output resized back (the
papers' protocol); a model trained on patches sees images at full resolution.
Resizing uses TensorFlow's antialiased bilinear filter in training, here and inside
exported SavedModels, so all three agree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

# Importing these registers the custom layers, losses and metrics that .keras files name.
from unet_tf import losses, metrics  # noqa: F401
from unet_tf.config import RunConfig
from unet_tf.data.resize import resize_image
from unet_tf.errors import UserError
from unet_tf.models import layers  # noqa: F401
from unet_tf.rundir import CONFIG, MODEL

EXPORT_CONFIG = "unet_tf.yaml"


def to_mask(probs: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) uint8 labels: 0/1 for one sigmoid channel, the arg-max class otherwise."""
    if probs.shape[-1] == 1:
        return (probs[..., 0] > threshold).astype(np.uint8)
    return np.argmax(probs, axis=-1).astype(np.uint8)


class Predictor:
    """A network plus the settings needed to apply it to a raw image."""

    def __init__(self, network: keras.Model | Callable, cfg: RunConfig):
        self.network = network
        self.cfg = cfg
        self.in_channels = cfg.model.in_channels
        self.threshold = float(cfg.train.threshold) if cfg.train.threshold != "auto" else 0.5
        self.resize_to = None if cfg.data.patch else cfg.data.size
        self.min_size = 2 ** ((cfg.model.depth or 1) + 1)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a float32 (B, H, W, C) batch."""
        out = (
            self.network(tf.constant(batch, tf.float32), training=False)
            if isinstance(self.network, keras.Model)
            else self.network(tf.constant(batch, tf.float32))
        )
        return np.asarray(out, np.float32)

    def check(self, image: np.ndarray, name: str) -> np.ndarray:
        image = image[..., None] if image.ndim == 2 else image
        if self.in_channels and image.shape[-1] != self.in_channels:
            kind = "grey" if self.in_channels == 1 else "RGB"
            raise UserError(
                f"{name} has {image.shape[-1]} channel(s) but the model was trained on "
                f"{self.in_channels}; convert it to {kind} or use a model trained on such images"
            )
        if self.resize_to is None and min(image.shape[:2]) < self.min_size:
            raise UserError(
                f"{name} is {image.shape[1]}x{image.shape[0]} px, smaller than the "
                f"{self.min_size} px this network needs; use larger images or a shallower --depth"
            )
        return image.astype(np.float32)

    def predict(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """Probabilities (H, W, K) for one raw (H, W[, C]) image."""
        image = self.check(image, name)
        h, w = image.shape[:2]
        if self.resize_to:
            small = resize_image(image, (self.resize_to, self.resize_to))
            return resize_image(self.forward(small[None])[0], (h, w))
        return self.forward(image[None])[0]


def load_predictor(path: Path | str) -> Predictor:
    """Load a run directory, a ``.keras`` file or an exported SavedModel."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"model not found: {path}; pass a run directory, a .keras file or a SavedModel"
        )
    if path.is_dir() and (path / "saved_model.pb").exists():
        return _load_savedmodel(path)
    model_file = path / MODEL if path.is_dir() else path
    if model_file.suffix != ".keras" or not model_file.exists():
        raise UserError(
            f"{path} is not a model: expected a run directory with {MODEL}, a .keras file, "
            "or a SavedModel folder from `unet-tf export`"
        )
    try:
        model = keras.saving.load_model(model_file)
    except Exception as exc:  # Keras raises many types for a damaged archive
        reason = str(exc).splitlines()[0][:200]
        raise UserError(f"cannot load {model_file}: {reason}") from None
    config_file = model_file.parent / CONFIG
    cfg = RunConfig.load(config_file) if config_file.exists() else _config_for(model)
    return Predictor(model, cfg)


def _config_for(model: keras.Model) -> RunConfig:
    """Settings for a bare ``.keras`` file: native resolution, channels from the model."""
    cfg = RunConfig()
    cfg.model.in_channels = int(model.inputs[0].shape[-1])
    cfg.model.num_classes = int(model.outputs[0].shape[-1])
    cfg.data.patch = cfg.data.size  # no resizing
    return cfg


def _load_savedmodel(path: Path) -> Predictor:
    config_file = path / EXPORT_CONFIG
    if not config_file.exists():
        raise UserError(f"{path} has no {EXPORT_CONFIG}; export it again with `unet-tf export`")
    return Predictor(SavedModelNetwork(path), RunConfig.load(config_file))


class SavedModelNetwork:
    """The ``network`` endpoint of an export; holds the loaded object so its variables live."""

    def __init__(self, path: Path):
        self.loaded = tf.saved_model.load(str(path))

    def __call__(self, batch: tf.Tensor) -> tf.Tensor:
        return self.loaded.network(batch)
