"""From raw images of any size to probability maps of the same size.

A :class:`Predictor` wraps a network (a Keras model or an exported one) with what
the run's config says about it and how the user wants it applied
(:class:`InferenceOptions`). There are three ways to apply a network:

- ``resize``: the whole image is resized to the training size and the output
  resized back (the papers' protocol). Resizing uses TensorFlow's antialiased
  bilinear filter in training, here and inside exported SavedModels, so all agree.
- ``tile``: overlapping tiles at full resolution, blended (:mod:`unet_tf.inference.tiling`).
- ``whole``: the whole image at full resolution in one pass.

By default a model is applied the way it was trained: one trained on resized images
keeps resizing, because at full resolution it would see objects at a scale it never
learned; one trained on patches (``--patch``) runs at full resolution and is tiled
with its patch size whenever an image is larger than that patch.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from unet_tf.config import AUTO_THRESHOLD_UNTIL_CHOSEN, RunConfig
from unet_tf.data.io import replace_non_finite
from unet_tf.data.resize import resize_image
from unet_tf.data.scale import KEEP_WITHIN, object_diameter, scale_factor, scaled_shape
from unet_tf.data.targets import multilabel
from unet_tf.errors import UserError, first_line
from unet_tf.export.loaders import EXPORT_CONFIG, is_export, open_export, sidecar_config
from unet_tf.inference.tiling import BLENDS, predict_tiled
from unet_tf.inference.tta import TTA_MODES, with_tta
from unet_tf.models import min_input_size
from unet_tf.models.sm import load_options
from unet_tf.rundir import CONFIG, ENSEMBLE, HISTORY, MODEL

__all__ = [
    "EXPORT_CONFIG",
    "InferenceOptions",
    "Predictor",
    "binary_mask",
    "compiled",
    "load_predictor",
    "remembering",
    "to_mask",
]


def to_mask(probs: np.ndarray, threshold: float, target: str) -> np.ndarray:
    """(H, W) uint8 labels of a prediction of the run's ``target`` (``cfg.data.target``).

    0/1 for one sigmoid channel, and for a target of independent sigmoid channels
    (``distance``: channel 0 is the foreground); the arg-max class of a softmax otherwise.
    """
    if binary_mask(probs.shape[-1], target):
        return (probs[..., 0] > threshold).astype(np.uint8)
    return np.argmax(probs, axis=-1).astype(np.uint8)


def binary_mask(channels: int, target: str) -> bool:
    """Whether :func:`to_mask` gives a 0/1 foreground (written as 0/255) or class indices."""
    return channels == 1 or multilabel(target)


DEFAULT_OVERLAP = 0.25


@dataclass
class InferenceOptions:
    """How to apply a network; the defaults apply it the way it was trained."""

    tile: int | None = None  # tile side; 0 = whole image; None = the training patch, if any
    overlap: float | None = None  # share of the tile side shared with each neighbour;
    # None = the run's plan (0.5 for thin structures), else DEFAULT_OVERLAP
    blend: str = "gaussian"
    tile_batch: int = 4  # tiles per forward pass: bounds the memory
    tta: str | None = None  # none | flips | d4; None = the run's plan, else none
    resize: bool = False  # resize to the training size even for a patch-trained model
    threshold: float | None = None  # None = the run's (train.threshold)

    def validate(self) -> None:
        checks = [
            (not (self.resize and self.tile), "--resize and --tile exclude each other"),
            (self.tile is None or self.tile >= 0, "--tile must be 0 (no tiling) or positive"),
            (
                self.overlap is None or 0.0 <= self.overlap < 1.0,
                "--overlap must be in [0, 1), e.g. 0.25",
            ),
            (self.blend in BLENDS, f"--blend must be one of {', '.join(BLENDS)}"),
            (self.tile_batch >= 1, "--tile-batch must be at least 1"),
            (
                self.tta is None or self.tta in TTA_MODES,
                f"--tta must be one of {', '.join(TTA_MODES)}",
            ),
            (
                self.threshold is None or 0.0 < self.threshold < 1.0,
                "--threshold must be between 0 and 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


def planned_inference(cfg: RunConfig) -> dict:
    """The inference the run's plan recorded (tile, overlap, TTA); empty without a plan."""
    return (cfg.plan or {}).get("inference") or {}


def run_inference(cfg: RunConfig, options: InferenceOptions) -> InferenceOptions:
    """``options`` with what was left out taken from the run's plan, else the defaults.

    The plan asks for more tile overlap on thin structures (vessels, membranes), whose
    tile edges show most, and for flip TTA; a run trained without a plan (or planned
    before the plan chose TTA) gets :data:`DEFAULT_OVERLAP` and no TTA, as it always did.
    """
    planned = planned_inference(cfg)
    overlap = options.overlap if options.overlap is not None else planned.get("overlap")
    return replace(
        options,
        overlap=float(overlap) if overlap is not None else DEFAULT_OVERLAP,
        tta=options.tta or planned.get("tta") or "none",
    )


class Predictor:
    """A network plus the settings needed to apply it to a raw image."""

    def __init__(
        self,
        network: keras.Model | Callable[[np.ndarray], np.ndarray],
        cfg: RunConfig,
        options: InferenceOptions | None = None,
        history: Path | None = None,
    ):
        self.network = network
        self.cfg = cfg
        options = options or InferenceOptions()
        options.validate()
        self.options = run_inference(cfg, options)
        self.history = history  # the run's history.csv, for training curves
        self.in_channels = cfg.model.in_channels
        auto = cfg.train.threshold == "auto"
        run_threshold = AUTO_THRESHOLD_UNTIL_CHOSEN if auto else float(cfg.train.threshold)
        self.threshold = self.options.threshold or run_threshold
        # How the network was trained: on images resized to `size`, or on full-res patches.
        self.resize_to = cfg.resize_to
        self.min_size = min_input_size(cfg.model)
        # An ONNX / LiteRT export that only takes one size is always tiled at that size.
        self.fixed_size = getattr(network, "fixed_size", None)
        if self.fixed_size and self.options.tile not in (None, self.fixed_size):
            raise UserError(
                f"this export only takes {self.fixed_size} px inputs; "
                f"use --tile {self.fixed_size} or leave --tile out"
            )
        self._forward = compiled(network) if isinstance(network, keras.Model) else network
        self._tta_forward = with_tta(self.forward, self.options.tta)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on a float32 (B, H, W, C) batch."""
        return np.asarray(self._forward(np.asarray(batch, np.float32)), np.float32)

    def untiled(self) -> Predictor:
        """The same network applied as trained but never tiled and without TTA (what
        exports compute)."""
        options = InferenceOptions(tile=0 if self.resize_to is None else None, tta="none")
        return Predictor(self.network, self.cfg, options, self.history)

    @property
    def tile(self) -> int:
        """Tile side at full resolution; 0 means the whole image at once.

        ``--tile`` wins; then the run's plan (at least its patch, see
        :data:`unet_tf.planning.rules.INFERENCE_TILE`); a run without a plan tiles at its
        training patch.
        """
        if self.fixed_size:
            return self.fixed_size
        if self.options.tile is not None:
            return self.options.tile
        return int(planned_inference(self.cfg).get("tile") or self.cfg.data.patch or 0)

    @property
    def resizes(self) -> bool:
        """Asked to resize, or trained on resized images and not asked to tile."""
        return self.options.resize or bool(self.resize_to and self.options.tile is None)

    def mode(self, height: int, width: int) -> str:
        """``resize``, ``tile`` or ``whole`` for an image of this size."""
        if self.resizes:
            return "resize"
        if self.fixed_size:
            return "tile"
        tile = self.tile
        return "tile" if tile and (height > tile or width > tile) else "whole"

    def describe(self) -> str:
        """How images are processed, in words (for logs and reports)."""
        o = self.options
        if self.resizes:
            how = f"images resized to {self.cfg.input_size if o.resize else self.resize_to} px"
        elif self.tile:
            how = (
                f"full resolution, tiles of {self.tile} px where larger "
                f"(overlap {o.overlap:g}, {o.blend} blend)"
            )
        else:
            how = "whole images at full resolution"
        if self.cfg.data.object_size and not self.resizes:
            how += f", each image rescaled to objects of {self.cfg.data.object_size:.3g} px"
        tta = "" if o.tta == "none" else f", TTA {o.tta}"
        return f"{how}{tta}, threshold {self.threshold:g}"

    def check(self, image: np.ndarray, name: str) -> np.ndarray:
        """The image as (H, W, C) if this network can take it, with NaN / Inf replaced.

        Non-finite pixels are replaced here too, for arrays that did not come from
        :func:`~unet_tf.data.io.read_image`: the network's per-image normalisation
        would spread a single NaN over the whole output and give an empty mask.
        """
        image = image[..., None] if image.ndim == 2 else image
        if self.in_channels and image.shape[-1] != self.in_channels:
            kind = "grey" if self.in_channels == 1 else "RGB"
            raise UserError(
                f"{name} has {image.shape[-1]} channel(s) but the model was trained on "
                f"{self.in_channels}; convert it to {kind} or use a model trained on such images"
            )
        if self.mode(*image.shape[:2]) != "resize" and min(image.shape[:2]) < self.min_size:
            raise UserError(
                f"{name} is {image.shape[1]}x{image.shape[0]} px, smaller than the "
                f"{self.min_size} px this network needs; use larger images or a shallower --depth"
            )
        if self.tile and self.tile < self.min_size:
            raise UserError(
                f"--tile {self.tile} is smaller than the {self.min_size} px this network needs"
            )
        return replace_non_finite(image, name)

    def predict(
        self, images: np.ndarray | Sequence[np.ndarray], name: str = "image"
    ) -> np.ndarray | list[np.ndarray]:
        """Probabilities for one image or a batch, each at its own size.

        One raw image (H, W) or (H, W, C) gives (H, W, K). A batch, a (B, H, W, C) array
        (grey images as (B, H, W, 1)) or a list of images of any sizes, gives a
        (B, H, W, K) array or a list. Images are processed one by one, so memory is
        bounded by the tiling, not by the batch.
        """
        if isinstance(images, (list, tuple)):
            return [self._predict_one(im, f"{name} {i}") for i, im in enumerate(images)]
        images = np.asarray(images)
        if images.ndim == 4:
            return np.stack([self._predict_one(im, f"{name} {i}") for i, im in enumerate(images)])
        return self._predict_one(images, name)

    def _predict_one(self, image: np.ndarray, name: str) -> np.ndarray:
        image = self.check(image, name)
        h, w = image.shape[:2]
        if self.mode(h, w) == "resize":
            side = self.cfg.input_size if self.options.resize else self.resize_to
            small = resize_image(image.astype(np.float32), (side, side))
            return resize_image(self._tta_forward(small[None])[0], (h, w))
        probs = self._full_resolution(image)
        if self.cfg.data.object_size:
            probs = self._at_object_size(image, probs)
        return probs

    def _full_resolution(self, image: np.ndarray) -> np.ndarray:
        """Probabilities of an image at its own size: tiled, or whole."""
        if self.mode(*image.shape[:2]) == "tile":
            o = self.options
            return predict_tiled(
                self._tta_forward, image, self.tile, o.overlap, o.blend, o.tile_batch
            )
        return self._tta_forward(image[None].astype(np.float32))[0]

    def _at_object_size(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """``probs`` again, from the image rescaled to the run's ``--object-size``.

        The scale is measured on the prediction, as training measured it on the
        reference masks; each pass measures it again on a prediction made closer to
        the scale the network knows, for at most :data:`SCALE_PASSES` passes.
        """
        h, w = image.shape[:2]
        smallest = self.min_size / min(h, w)  # the network's smallest input
        factor = 1.0
        for _ in range(SCALE_PASSES):
            foreground = to_mask(probs, self.threshold, self.cfg.data.target) > 0
            wanted = scale_factor(object_diameter(foreground), self.cfg.data.object_size)
            wanted = max(wanted, smallest)
            if abs(wanted / factor - 1.0) <= KEEP_WITHIN:
                break
            factor = wanted
            scaled = resize_image(image.astype(np.float32), scaled_shape(image.shape, factor))
            probs = resize_image(self._full_resolution(scaled), (h, w))
        return probs


SCALE_PASSES = 3  # predictions at a measured scale after the native one, at most


REMEMBER_BYTES = 2 * 1024**3  # outputs a remembering network keeps, at most


def remembering(forward: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    """``forward`` that remembers each output by its input batch's bytes.

    After ``fit``, the validation images are predicted for the scores, then again for
    the post-processing's tuning; remembered, each tile is computed once (on DSB 2018's
    30 validation images a pass takes about 18 s here).
    """
    memo: dict[tuple, np.ndarray] = {}
    held = [0]  # bytes remembered; past REMEMBER_BYTES new outputs are not kept

    def remembered(batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        key = (batch.shape, hashlib.blake2b(batch.tobytes(), digest_size=16).digest())
        if key in memo:
            return memo[key]
        out = np.asarray(forward(batch))
        if held[0] + out.nbytes <= REMEMBER_BYTES:
            memo[key], held[0] = out, held[0] + out.nbytes
        return out

    return remembered


def compiled(model: keras.Model) -> Callable[[np.ndarray], tf.Tensor]:
    """One graph for every input size: faster than eager calls, traced once."""
    channels = model.inputs[0].shape[-1]
    spec = tf.TensorSpec([None, None, None, channels], tf.float32)

    def probabilities(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(model(x, training=False), tf.float32)

    run = tf.function(probabilities, input_signature=[spec], autograph=False)
    return lambda batch: run(tf.constant(batch, tf.float32))


def load_predictor(path: Path | str, options: InferenceOptions | None = None) -> Predictor:
    """Load a run directory, a ``.keras`` file, a SavedModel, or an ONNX / LiteRT file."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"model not found: {path}; pass a run directory, a .keras file or an export "
            "(SavedModel folder, .onnx or .tflite)"
        )
    if is_export(path):
        config_file = sidecar_config(path)
        if not config_file.exists():
            raise UserError(
                f"{path} has no {config_file.name} next to it; "
                "export it again with `unet-tf export`"
            )
        return Predictor(open_export(path), RunConfig.load(config_file), options)
    if path.is_dir() and (path / ENSEMBLE).is_file():
        return load_ensemble(path, options)
    model_file = path / MODEL if path.is_dir() else path
    if model_file.suffix != ".keras" or not model_file.exists():
        raise UserError(
            f"{path} is not a model: expected a run directory with {MODEL}, a .keras file, "
            "a fold ensemble, or an export from `unet-tf export` (SavedModel folder, .onnx "
            "or .tflite)"
        )
    model, cfg = _load_keras(model_file)
    history = model_file.parent / HISTORY
    return Predictor(model, cfg, options, history if history.exists() else None)


def _load_keras(model_file: Path) -> tuple[keras.Model, RunConfig]:
    """A ``.keras`` file and the config of its run (or one derived from the model)."""
    if not zipfile.is_zipfile(model_file):  # Keras would call it "File not found"
        raise UserError(
            f"{model_file} is damaged or not a Keras model file (a .keras file is a zip "
            "archive); replace it with an intact copy"
        )
    config_file = model_file.parent / CONFIG
    saved = RunConfig.load(config_file) if config_file.exists() else None
    try:
        loading = load_options(saved.model.backbone) if saved else {}
        model = keras.saving.load_model(model_file, **loading)
    except Exception as exc:  # Keras raises many types for a damaged archive
        reason = first_line(exc)
        raise UserError(
            f"cannot load {model_file}: {reason}; the file may be damaged, copy it again"
        ) from None
    return model, saved or config_for(model)


class MeanNetwork:
    """Several networks as one: the mean of their probabilities (a fold ensemble).

    Averaging inside the predictor means resizing, tiling and TTA are applied once,
    to the averaged network, exactly as for a single model.
    """

    fixed_size = None

    def __init__(self, models: list[keras.Model]):
        self.models = models
        self._forwards = [compiled(model) for model in models]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.mean([np.asarray(forward(batch)) for forward in self._forwards], axis=0)


def load_ensemble(path: Path, options: InferenceOptions | None = None) -> Predictor:
    """A fold ensemble (``fit --all-folds``): its folds' models, averaged, at the
    out-of-fold threshold recorded in ``ensemble.json``, with the watershed setting
    chosen on the same predictions (an ensemble recorded before that choice existed
    keeps its first fold's)."""
    record = json.loads((path / ENSEMBLE).read_text())
    folds = [path / name for name in record["folds"]]
    missing = [f.name for f in folds if not (f / MODEL).is_file()]
    if missing:
        raise UserError(
            f"the ensemble {path} lacks {', '.join(missing)}; rerun the same "
            "`unet-tf fit --all-folds` command to finish it"
        )
    loaded = [_load_keras(fold / MODEL) for fold in folds]
    cfg = loaded[0][1]
    cfg = replace(cfg, train=replace(cfg.train, threshold=record["threshold"]))
    post = record.get("postprocess")
    if post is not None:
        setting = post["parameter"]
        cfg = replace(cfg, postprocess=replace(cfg.postprocess, **{setting: post[setting]}))
    return Predictor(MeanNetwork([model for model, _ in loaded]), cfg, options)


def config_for(model: keras.Model) -> RunConfig:
    """Settings for a model without a run (a bare ``.keras`` file, or one built in a
    notebook): channels and classes from the model, applied at native resolution."""
    defaults = RunConfig()
    return replace(
        defaults,
        model=replace(
            defaults.model,
            in_channels=int(model.inputs[0].shape[-1]),
            num_classes=int(model.outputs[0].shape[-1]),
        ),
        data=replace(defaults.data, patch=defaults.data.size),  # no resizing
    )
