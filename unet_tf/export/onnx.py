"""``NAME.onnx``: the bare network (raw images in, probabilities out), run by onnxruntime.

The input size stays dynamic unless the converter or onnxruntime cannot handle the
network that way; then the export has the training size and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unet_tf.errors import UserError
from unet_tf.export.common import Verification, fixed_side, write_network_file

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

SUFFIX = ".onnx"
RUNTIME = "onnxruntime"


def write_onnx(predictor: Predictor, out: Path) -> Verification:
    """Convert with tf2onnx (through Keras) and check the file in onnxruntime."""
    return write_network_file(predictor, out, "onnx", OnnxNetwork, RUNTIME)


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
        self.fixed_size = fixed_side(spec.shape[1:3])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.asarray(batch, np.float32)})[0]
