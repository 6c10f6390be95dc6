"""The export formats: ``unet-tf export --format NAME`` and what opens each result.

A format is one module (:mod:`~unet_tf.export.savedmodel`, :mod:`~unet_tf.export.onnx`,
:mod:`~unet_tf.export.litert`, :mod:`~unet_tf.export.bioimageio`) and one entry here; the
exporter, the loaders and the command line take everything else (choices, suffix checks,
detection) from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unet_tf.export import bioimageio, litert, onnx, savedmodel
from unet_tf.export.common import Network, Verification
from unet_tf.registry import Registry

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

# Writes the export to a (temporary) path, reloads it and compares it with Keras; a format
# that `takes_meta` also accepts the `--meta FILE.yaml` path as a third argument.
Writer = Callable[["Predictor", Path], Verification]


@dataclass(frozen=True)
class ExportFormat:
    """What one export format is: its name on disk, its runtime, its writer and loader."""

    suffix: str | None  # of the exported file; None for a folder, known by `folder_file`
    runtime: str  # what reloads it for the check, for messages
    write: Writer
    load: Callable[[Path], Network]
    folder_file: str | None = None  # the file that makes a folder an export of this format
    # for a suffix others use too (.zip): what tells a file of this format from the rest
    detect: Callable[[Path], bool] | None = None
    takes_meta: bool = False  # whether the writer takes --meta FILE.yaml

    def recognises(self, path: Path) -> bool:
        """Whether ``path`` looks like an export in this format (before opening it)."""
        if self.suffix is None:
            folder_file = self.folder_file
            return folder_file is not None and path.is_dir() and (path / folder_file).exists()
        if self.detect is not None:
            return self.detect(path)
        return path.is_file() and path.suffix.lower() == self.suffix


EXPORT_FORMATS: Registry[ExportFormat] = Registry("export format", "--format")
EXPORT_FORMATS.add(
    "savedmodel",
    ExportFormat(
        None,
        savedmodel.RUNTIME,
        savedmodel.write_savedmodel,
        savedmodel.SavedModelNetwork,
        folder_file=savedmodel.SIGNATURE_FILE,
    ),
    "TensorFlow SavedModel folder, resizing and normalising inside",
)
EXPORT_FORMATS.add(
    "onnx",
    ExportFormat(onnx.SUFFIX, onnx.RUNTIME, onnx.write_onnx, onnx.OnnxNetwork),
    "NAME.onnx, the bare network for onnxruntime",
)
EXPORT_FORMATS.add(
    "litert",
    ExportFormat(litert.SUFFIX, litert.RUNTIME, litert.write_litert, litert.LiteRTNetwork),
    "NAME.tflite, the bare network for LiteRT (TFLite)",
)
EXPORT_FORMATS.add(
    "bioimageio",
    ExportFormat(
        bioimageio.SUFFIX,
        bioimageio.RUNTIME,
        bioimageio.write_bioimageio,
        bioimageio.BioimageioNetwork,
        detect=bioimageio.is_package,
        takes_meta=True,
    ),
    "NAME.zip, a bioimage.io model package for deepImageJ, ilastik and bioimageio.core",
)
