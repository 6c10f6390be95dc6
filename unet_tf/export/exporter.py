"""Export to formats that need neither Keras nor this package, each verified on reload.

The formats are in :data:`unet_tf.export.registry.EXPORT_FORMATS`. Whatever the
format, an export is built under a temporary name, reloaded in its own runtime and
compared with the Keras model, and only then moved to ``--out``: a failed or killed
export leaves any previous one intact. The config that ``predict`` needs travels with
it (inside a folder export, beside a file), and a folder export carries the marker that
lets a later ``--overwrite`` replace it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import keras

from unet_tf.atomic import atomic_path
from unet_tf.errors import UserError
from unet_tf.export.loaders import EXPORT_CONFIG, sidecar_config
from unet_tf.export.registry import EXPORT_FORMATS, ExportFormat
from unet_tf.inference.predictor import Predictor
from unet_tf.rundir import check_replaceable, check_writable, write_marker


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
    meta: Path | None = None,
) -> ExportResult:
    """Write ``predictor``'s network as ``fmt`` to ``out``, reload it and compare.

    ``protected`` (the model being exported) is never replaced. ``meta`` is the
    ``--meta FILE.yaml`` of the formats that describe their model (bioimageio).
    """
    export = EXPORT_FORMATS.get(fmt)
    out = Path(out)
    if meta is not None and not export.takes_meta:
        takers = [e.name for e in EXPORT_FORMATS if e.value.takes_meta]
        raise UserError(f"--meta applies to --format {' or '.join(takers)} only; leave it out")
    _check_out(out, fmt, export, overwrite, protected)
    if not isinstance(predictor.network, keras.Model):
        raise UserError(
            "this model is already an export; export from a run directory or .keras file"
        )
    with atomic_path(out) as tmp:
        worst, notes = export.write(predictor, tmp, *([meta] if meta is not None else []))
        if export.suffix is None:  # a folder holds its config and the marker --overwrite needs
            predictor.cfg.save(tmp / EXPORT_CONFIG)
            write_marker(tmp, "export")
        else:  # beside the file, and in place before it
            with atomic_path(sidecar_config(out)) as config_tmp:
                predictor.cfg.save(config_tmp)
    return ExportResult(out, worst, export.runtime, notes)


def _check_out(
    out: Path, fmt: str, export: ExportFormat, overwrite: bool, protected: Iterable
) -> None:
    """Refuse an ``--out`` that exists unless ``--overwrite`` may replace it."""
    check_writable(out.parent, "--out")
    suffix = export.suffix
    if suffix is not None:
        if out.suffix.lower() != suffix:
            raise UserError(f"--out for {fmt} must end in {suffix}, e.g. model{suffix}")
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; name the {suffix} file to create")
    exists = out.exists() and (out.is_file() or any(out.iterdir()))
    if exists and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite or choose another --out")
    if suffix is None:
        if out.is_file():
            raise UserError(f"--out {out} is a file; a {fmt} export is a folder: choose a new name")
        if exists:
            check_replaceable(out, "export", "--out", protected)
    else:
        for path in protected:
            if path is not None and Path(path).resolve() == out.resolve():
                raise UserError(f"--out {out} is the model being exported; choose another --out")
