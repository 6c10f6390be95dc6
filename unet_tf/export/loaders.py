"""Networks from exported files, so ``predict`` and ``evaluate`` run without the run dir.

Each format's loader is a callable from a float32 (B, H, W, C) batch of raw images to
(B, H, W, K) probabilities, like the Keras network it came from; ``fixed_size`` is
the input side of an export that could not keep a dynamic size (else None). The settings the
predictor needs (training size, channels, threshold) travel next to the export:
``unet_tf.yaml`` inside a SavedModel folder, ``NAME.unet_tf.yaml`` beside
``NAME.onnx`` or ``NAME.tflite``.
"""

from __future__ import annotations

from pathlib import Path

from unet_tf.errors import UserError
from unet_tf.export.common import Network
from unet_tf.export.registry import EXPORT_FORMATS, ExportFormat

EXPORT_CONFIG = "unet_tf.yaml"


def sidecar_config(path: Path) -> Path:
    """Where an export's config lives."""
    path = Path(path)
    return path / EXPORT_CONFIG if path.is_dir() else path.with_suffix(f".{EXPORT_CONFIG}")


def export_format(path: Path) -> ExportFormat | None:
    """The format ``path`` is an export in, by its suffix or folder contents, if any."""
    return next((e.value for e in EXPORT_FORMATS if e.value.recognises(path)), None)


def is_export(path: Path) -> bool:
    return export_format(path) is not None


def open_export(path: Path) -> Network:
    """The network of an export in any registered format (see :func:`is_export`)."""
    fmt = export_format(path)
    if fmt is None:
        formats = ", ".join(EXPORT_FORMATS.names())
        raise UserError(f"{path} is not an export from `unet-tf export` ({formats})")
    return fmt.load(path)
