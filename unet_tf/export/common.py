"""What every export format shares: the check against Keras and the file-format writer.

ONNX and LiteRT runtimes have no bfloat16 kernels for most operations, so a model
trained in mixed precision is exported as a float32 copy with the same weights.
Before an export is kept it is reloaded in its own runtime and compared with the
Keras model; a difference above ``TOLERANCE`` fails it.

This module imports nothing of ``unet_tf.export`` so that the per-format modules, the
registry and the loaders can all build on it without an import cycle.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import keras
import numpy as np

from unet_tf.errors import UserError
from unet_tf.runtime.quiet import silenced_stderr

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

TOLERANCE = 1e-3

# A reopened export: float32 (B, H, W, C) raw images in, (B, H, W, K) probabilities out.
Network = Callable[[np.ndarray], np.ndarray]


class Verification(NamedTuple):
    """What a format's writer found when it reloaded its export."""

    max_difference: float  # from the Keras model, on the check images
    notes: list[str]  # what the user should know about this export


def difference(got: np.ndarray, expected: np.ndarray, out: Path) -> float:
    """The largest absolute difference of a reloaded export's output from Keras's.

    The shapes must be equal: NumPy would broadcast a (1, B, H, W, K) output against
    (B, H, W, K) and report a small difference for an export whose every prediction
    would then carry an extra axis.
    """
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise UserError(
            f"the export at {out} returns shape {got.shape} where the Keras model returns "
            f"{expected.shape}; it was not kept. Please report this as a bug"
        )
    return float(np.max(np.abs(got - expected)))


def check_difference(worst: float, out: Path) -> None:
    """Fail an export whose reloaded outputs differ from the Keras model's."""
    if worst > TOLERANCE:
        raise UserError(
            f"the export at {out} differs from the Keras model by {worst:.2e} "
            f"(more than {TOLERANCE:.0e}); it was not kept. Please report this as a bug"
        )


def fixed_side(dims) -> int | None:
    """The side of a square input fixed at export time, or None when the size is dynamic."""
    sides = [d for d in dims if isinstance(d, (int, np.integer)) and d > 0]
    return int(sides[0]) if len(sides) == 2 else None


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network computing in float32 (mixed-precision layers rebuilt), same weights."""
    config = keras.saving.serialize_keras_object(model)
    rewritten = _float32_policies(config)
    if rewritten == config:
        return model
    clone = keras.saving.deserialize_keras_object(rewritten)
    clone.set_weights(model.get_weights())
    return clone


def _float32_policies(node):
    if isinstance(node, dict):
        name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
        if node.get("class_name") == "DTypePolicy" and str(name).startswith("mixed"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value) for value in node]
    return node


def write_network_file(
    predictor: Predictor,
    out: Path,
    keras_format: str,
    load: Callable[[Path], Network],
    runtime: str,
) -> Verification:
    """Export the bare network with Keras's ``keras_format`` exporter and check it in
    ``load``'s runtime: with a dynamic input size if the runtime can run it, else at the
    training size (converters drop or mangle shapes of some networks when it is dynamic).
    """
    model = float32_copy(predictor.network)
    channels = predictor.in_channels
    side = predictor.cfg.input_size
    notes = []
    try:
        _convert(model, keras_format, out, None)
        # Other heights and widths than the training size, but multiples of 32, so that
        # only the export's shape handling is tested, not the network's odd-size support.
        sizes = [(2, side, side), (1, side + 32, side + 64)]
        outputs = _run_export(load, out, _samples(sizes, channels))
    except UserError:
        raise
    except Exception as exc:  # converters and runtimes raise many types for unsupported ops
        reason = str(exc).strip().splitlines()[0].split(". ")[0][:160]
        _convert(model, keras_format, out, side)
        outputs = _run_export(load, out, _samples([(2, side, side)], channels))
        notes.append(
            f"fixed input size {side}x{side} px: {runtime} could not run this network "
            f"with a dynamic size ({reason}); predict tiles or resizes images to {side} px"
        )
    worst = max(difference(got, model(x).numpy(), out) for x, got in outputs)
    check_difference(worst, out)
    if model is not predictor.network:
        x = outputs[0][0]
        drift = float(np.max(np.abs(predictor.network(x).numpy() - model(x).numpy())))
        notes.append(
            "trained in mixed precision: the export computes in float32, which differs from "
            f"the bfloat16 Keras model by at most {drift:.2e} on the check images"
        )
    return Verification(worst, notes)


def _run_export(
    load: Callable[[Path], Network], out: Path, inputs: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reload the export in its runtime and run it on each input."""
    with silenced_stderr():
        network = load(out)
        return [(x, network(x)) for x in inputs]


def _samples(shapes: list[tuple[int, int, int]], channels: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*shape, channels)).astype(np.float32) for shape in shapes]


def _convert(model: keras.Model, keras_format: str, out: Path, side: int | None) -> None:
    """Run Keras's exporter, at a fixed spatial size when ``side`` is given."""
    channels = model.inputs[0].shape[-1]
    if side is not None:
        inputs = keras.Input((side, side, channels))
        model = keras.Model(inputs, model(inputs))
    model(np.zeros((1, side or 32, side or 32, channels), np.float32))  # exporters need a call
    try:
        with silenced_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's use of np.object
            model.export(str(out), format=keras_format, verbose=False)
    except ImportError as exc:
        raise UserError(
            f"exporting to {keras_format} needs {exc.name or 'extra packages'}; "
            "install them with `pip install unet-tf[export]`"
        ) from None
