"""Networks from exported files, so ``predict`` and ``evaluate`` run without the run dir.

Each wrapper is a callable from a float32 (B, H, W, C) batch of raw images to
(B, H, W, K) probabilities, like the Keras network it came from; ``fixed_size`` is
the input side of an export that could not keep a dynamic size (else None). The settings the
predictor needs (training size, channels, threshold) travel next to the export:
``unet_tf.yaml`` inside a SavedModel folder, ``NAME.unet_tf.yaml`` beside
``NAME.onnx`` or ``NAME.tflite``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from unet_tf.errors import UserError

EXPORT_CONFIG = "unet_tf.yaml"
FILE_SUFFIXES = {".onnx": "onnx", ".tflite": "litert"}


def sidecar_config(path: Path) -> Path:
    """Where an export's config lives."""
    path = Path(path)
    return path / EXPORT_CONFIG if path.is_dir() else path.with_suffix(f".{EXPORT_CONFIG}")


def is_export(path: Path) -> bool:
    return (path.is_dir() and (path / "saved_model.pb").exists()) or (
        path.is_file() and path.suffix.lower() in FILE_SUFFIXES
    )


def open_export(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The network of a SavedModel folder, an ``.onnx`` file or a ``.tflite`` file."""
    if path.is_dir():
        return SavedModelNetwork(path)
    if FILE_SUFFIXES[path.suffix.lower()] == "onnx":
        return OnnxNetwork(path)
    return LiteRTNetwork(path)


def _fixed_side(dims) -> int | None:
    """The side of a square input fixed at export time, or None when the size is dynamic."""
    sides = [d for d in dims if isinstance(d, (int, np.integer)) and d > 0]
    return int(sides[0]) if len(sides) == 2 else None


class SavedModelNetwork:
    """The ``network`` endpoint of an export; holds the loaded object so its variables live."""

    fixed_size = None

    def __init__(self, path: Path):
        if not (path / "variables" / "variables.index").exists():
            raise UserError(
                f"{path} is an incomplete SavedModel: variables/ (the weights) is missing; "
                "copy the whole folder again or export it again with `unet-tf export`"
            )
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel
            reason = str(exc).splitlines()[0][:200]
            raise UserError(
                f"cannot load SavedModel {path}: {reason}; export it again with `unet-tf export`"
            ) from None
        if not hasattr(self.loaded, "network"):
            raise UserError(
                f"{path} is a SavedModel but not one from `unet-tf export` (no network "
                "endpoint); export the run with `unet-tf export`"
            )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.loaded.network(tf.constant(batch, tf.float32)).numpy()


class OnnxNetwork:
    """An ONNX file run by onnxruntime on the CPU."""

    def __init__(self, path: Path):
        try:
            import onnxruntime
        except ImportError:
            raise UserError(
                f"{path} needs onnxruntime; install it with `pip install unet-tf[export]`"
            ) from None
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for damaged files
            reason = str(exc).splitlines()[0][:200]
            raise UserError(f"cannot load {path}: {reason}") from None
        spec = self.session.get_inputs()[0]
        self.input = spec.name
        self.fixed_size = _fixed_side(spec.shape[1:3])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.asarray(batch, np.float32)})[0]


class LiteRTNetwork:
    """A ``.tflite`` file run by the LiteRT interpreter, resized to each batch's shape."""

    def __init__(self, path: Path):
        self.interpreter = _interpreter(path)
        details = self.interpreter.get_input_details()[0]
        self.input = details["index"]
        self.fixed_size = _fixed_side(details["shape_signature"][1:3])
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        if batch.shape != self.shape:
            self.interpreter.resize_tensor_input(self.input, batch.shape)
            self.interpreter.allocate_tensors()
            self.shape = batch.shape
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


def _interpreter(path: Path):
    """LiteRT's own interpreter (``ai-edge-litert``), else the one inside TensorFlow."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter  # deprecated in TensorFlow, still shipped
    try:
        return Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise UserError(f"cannot load {path}: {reason}") from None
