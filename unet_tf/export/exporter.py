"""Export to formats that need neither Keras nor this package, each verified on reload.

- ``savedmodel``: a TensorFlow SavedModel. Endpoints (``serve`` is also
  ``serving_default``): ``serve`` maps float32 images (B, H, W, C) of any size, raw
  intensities, to probabilities (B, H, W, K) at the same size, normalising inside and,
  for a model trained on resized images, resizing inside as ``predict`` does;
  ``serve_uint8`` / ``serve_uint16`` take integer images; ``network`` is the bare
  fully convolutional network, for tiled inference.
- ``onnx`` (``NAME.onnx``, run by onnxruntime) and ``litert`` (``NAME.tflite``, run
  by the LiteRT interpreter): the bare network, raw images in, probabilities out. The
  input size stays dynamic unless the converter or the runtime cannot handle the
  network that way; then the export has the training size and says so.

ONNX and LiteRT runtimes have no bfloat16 kernels for most operations, so a model
trained in mixed precision is exported as a float32 copy with the same weights.
Before reporting success every export is reloaded in its own runtime and compared
with the Keras model; a difference above ``TOLERANCE`` removes the export.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.atomic import atomic_path
from unet_tf.errors import UserError
from unet_tf.export.loaders import EXPORT_CONFIG, open_export, sidecar_config
from unet_tf.inference.predictor import Predictor
from unet_tf.rundir import check_replaceable, check_writable, write_marker
from unet_tf.runtime.quiet import silenced_stderr

TOLERANCE = 1e-3
FORMATS = ("savedmodel", "onnx", "litert")
SUFFIXES = {"onnx": ".onnx", "litert": ".tflite"}
RUNTIMES = {
    "savedmodel": "tf.saved_model.load",
    "onnx": "onnxruntime",
    "litert": "the LiteRT interpreter",
}


@dataclass
class ExportResult:
    path: Path
    max_difference: float
    runtime: str
    notes: list[str] = field(default_factory=list)


def export_model(
    predictor: Predictor,
    fmt: str,
    out: Path,
    overwrite: bool = False,
    protected: Iterable[Path | str | None] = (),
) -> ExportResult:
    """Write ``predictor``'s network as ``fmt`` to ``out``, reload it and compare.

    The export is built under a temporary name and moves to ``out`` only once it has
    been verified, so a failed or killed export leaves any previous one intact.
    ``protected`` (the model being exported) is never replaced.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_out(out, fmt, overwrite, protected)
    if fmt == "savedmodel":
        worst = export_savedmodel(predictor, out)
        return ExportResult(out, worst, RUNTIMES[fmt])
    _keras_model(predictor)
    with atomic_path(out) as tmp:
        result = _export_file(predictor, fmt, tmp)
        with atomic_path(sidecar_config(out)) as config_tmp:
            predictor.cfg.save(config_tmp)
    return ExportResult(out, result.max_difference, result.runtime, result.notes)


def _check_out(out: Path, fmt: str, overwrite: bool, protected: Iterable) -> None:
    """Refuse an ``--out`` that exists unless ``--overwrite`` may replace it."""
    check_writable(out.parent, "--out")
    if fmt != "savedmodel":
        suffix = SUFFIXES[fmt]
        if out.suffix.lower() != suffix:
            raise UserError(f"--out for {fmt} must end in {suffix}, e.g. model{suffix}")
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; name the {suffix} file to create")
    exists = out.exists() and (out.is_file() or any(out.iterdir()))
    if exists and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite or choose another --out")
    if fmt == "savedmodel":
        if out.is_file():
            raise UserError(f"--out {out} is a file; a SavedModel is a folder: choose a new name")
        if exists:
            check_replaceable(out, "export", "--out", protected)
    else:
        for path in protected:
            if path is not None and Path(path).resolve() == out.resolve():
                raise UserError(f"--out {out} is the model being exported; choose another --out")


def _keras_model(predictor: Predictor) -> keras.Model:
    if not isinstance(predictor.network, keras.Model):
        raise UserError(
            "this model is already an export; export from a run directory or .keras file"
        )
    return predictor.network


def serving_function(model: keras.Model, resize_to: int | None):
    """Raw images in, probabilities at the input size out."""

    def serve(images):
        x = tf.cast(images, tf.float32)
        if resize_to:
            size = tf.shape(x)[1:3]
            x = tf.image.resize(x, (resize_to, resize_to), antialias=True)
            probs = tf.cast(model(x, training=False), tf.float32)
            return tf.image.resize(probs, size, antialias=True)
        return tf.cast(model(x, training=False), tf.float32)

    return serve


def export_savedmodel(predictor: Predictor, out: Path) -> float:
    """Write the SavedModel, verify it, and return the largest difference seen."""
    model = _keras_model(predictor)
    channels = predictor.in_channels
    serve = serving_function(model, predictor.resize_to)
    spec = lambda dtype: [tf.TensorSpec([None, None, None, channels], dtype)]  # noqa: E731
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=spec(tf.float32))
    archive.add_endpoint("serve_uint8", serve, input_signature=spec(tf.uint8))
    archive.add_endpoint("serve_uint16", serve, input_signature=spec(tf.uint16))
    archive.add_endpoint(
        "network",
        lambda x: tf.cast(model(x, training=False), tf.float32),
        input_signature=spec(tf.float32),
    )
    with atomic_path(Path(out)) as tmp:
        archive.write_out(str(tmp), verbose=False)
        predictor.cfg.save(tmp / EXPORT_CONFIG)
        write_marker(tmp, "export")
        worst = verify_export(predictor, tmp)
    return worst


def verify_export(predictor: Predictor, out: Path) -> float:
    """Reload the SavedModel and compare it with the Keras predictor (untiled)."""
    loaded = tf.saved_model.load(str(out))
    reference = predictor.untiled()
    side = predictor.resize_to or max(predictor.min_size, 64)
    rng = np.random.default_rng(0)
    worst = 0.0
    # the odd size is larger than side on both axes: side may be the network's minimum
    for h, w in ((side, side), (side + side // 2 + 1, side + side // 4 + 3)):
        image = rng.integers(0, 256, (h, w, predictor.in_channels)).astype(np.uint8)
        expected = reference.predict(image)
        for fn, x in ((loaded.serve, image.astype(np.float32)), (loaded.serve_uint8, image)):
            got = fn(tf.constant(x[None]))[0].numpy()
            worst = max(worst, float(np.max(np.abs(got - expected))))
    _check(worst, out)
    return worst


def _check(worst: float, out: Path) -> None:
    if worst > TOLERANCE:
        raise UserError(
            f"the export at {out} differs from the Keras model by {worst:.2e} "
            f"(more than {TOLERANCE:.0e}); it was not kept. Please report this as a bug"
        )


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


def _export_file(predictor: Predictor, fmt: str, out: Path) -> ExportResult:
    """ONNX or LiteRT: dynamic input size if the runtime can run it, else the training size."""
    model = float32_copy(predictor.network)
    channels = predictor.in_channels
    side = predictor.cfg.input_size
    notes = []
    try:
        _convert(model, fmt, out, None)
        # Other heights and widths than the training size, but multiples of 32, so that
        # only the export's shape handling is tested, not the network's odd-size support.
        sizes = [(2, side, side), (1, side + 32, side + 64)]
        outputs = _run_export(out, _samples(sizes, channels))
    except UserError:
        raise
    except Exception as exc:  # converters and runtimes raise many types for unsupported ops
        reason = str(exc).strip().splitlines()[0].split(". ")[0][:160]
        _convert(model, fmt, out, side)
        outputs = _run_export(out, _samples([(2, side, side)], channels))
        notes.append(
            f"fixed input size {side}x{side} px: {RUNTIMES[fmt]} could not run this network "
            f"with a dynamic size ({reason}); predict tiles or resizes images to {side} px"
        )
    worst = max(float(np.max(np.abs(got - model(x).numpy()))) for x, got in outputs)
    _check(worst, out)
    if model is not predictor.network:
        x = outputs[0][0]
        drift = float(np.max(np.abs(predictor.network(x).numpy() - model(x).numpy())))
        notes.append(
            "trained in mixed precision: the export computes in float32, which differs from "
            f"the bfloat16 Keras model by at most {drift:.2e} on the check images"
        )
    return ExportResult(out, worst, RUNTIMES[fmt], notes)


def _run_export(out: Path, inputs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reload the export in its runtime and run it on each input."""
    with silenced_stderr():
        network = open_export(out)
        return [(x, network(x)) for x in inputs]


def _samples(shapes: list[tuple[int, int, int]], channels: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*shape, channels)).astype(np.float32) for shape in shapes]


def _convert(model: keras.Model, fmt: str, out: Path, side: int | None) -> None:
    """Run Keras's exporter, at a fixed spatial size when ``side`` is given."""
    channels = model.inputs[0].shape[-1]
    if side is not None:
        inputs = keras.Input((side, side, channels))
        model = keras.Model(inputs, model(inputs))
    model(np.zeros((1, side or 32, side or 32, channels), np.float32))  # exporters need a call
    try:
        with silenced_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's use of np.object
            model.export(str(out), format=fmt, verbose=False)
    except ImportError as exc:
        raise UserError(
            f"exporting to {fmt} needs {exc.name or 'extra packages'}; "
            "install them with `pip install unet-tf[export]`"
        ) from None
