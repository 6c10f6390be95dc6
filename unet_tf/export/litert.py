"""``NAME.tflite``: the bare network (raw images in, probabilities out), run by LiteRT.

The input size stays dynamic unless the converter or the interpreter cannot handle
the network that way (``UpSampling2D`` + ``Concatenate`` become TensorFlow ops that
LiteRT cannot run); then the export has the training size and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from unet_tf.errors import UserError
from unet_tf.export.common import Verification, fixed_side, write_network_file

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

SUFFIX = ".tflite"
RUNTIME = "the LiteRT interpreter"


def write_litert(predictor: Predictor, out: Path) -> Verification:
    """Convert with the TFLite converter (through Keras) and check the file in LiteRT."""
    return write_network_file(predictor, out, "litert", LiteRTNetwork, RUNTIME)


class LiteRTNetwork:
    """A ``.tflite`` file run by the LiteRT interpreter, resized to each batch's shape."""

    def __init__(self, path: Path):
        self.interpreter = _interpreter(path)
        details = self.interpreter.get_input_details()[0]
        self.input = details["index"]
        self.fixed_size = fixed_side(details["shape_signature"][1:3])
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
