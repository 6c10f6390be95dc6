"""The checks every export format passes; one subclass per format sets what differs.

As segmentation_models.pytorch's ``BaseModelTester`` and keras-hub's
``run_model_saving_test``: ``test_<format>.py`` subclasses :class:`ExportFormatTester`,
names its format and adds the format's own tests. An export costs seconds, so each class
exports once, through the command line and over a previous export of its own (which
``--overwrite`` must replace), and every check reuses that export.
"""

from __future__ import annotations

import functools
import io
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, NoReturn

import keras
import numpy as np
import pytest

from unet_tf.atomic import TMP_PREFIX
from unet_tf.cli import main
from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.export import exporter
from unet_tf.export.common import float32_copy
from unet_tf.export.exporter import ExportResult, export_model
from unet_tf.export.loaders import sidecar_config
from unet_tf.export.registry import EXPORT_FORMATS, ExportFormat
from unet_tf.inference.predictor import InferenceOptions, Predictor, load_predictor
from unet_tf.models.unet import build_unet
from unet_tf.registry import Registry
from unet_tf.rundir import write_marker

PREVIOUS = b"a previous export"


def bf16_unet() -> keras.Model:
    """An (untrained) U-Net built in mixed_bfloat16, as fit makes here; one level deep,
    which halves the time of every export."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        return build_unet(1, 1, depth=1, base_filters=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@functools.cache
def bf16_run_in(root: Path) -> Path:
    """A run directory holding :func:`bf16_unet` and its config, made once per ``root``
    (the session's temporary folder: every format exports the same run)."""
    run = root / "bf16-run"
    run.mkdir()
    bf16_unet().save(run / "model.keras")
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.depth, cfg.model.base_filters = 1, 1, 4
    cfg.data.size = 64
    cfg.save(run / "config.yaml")
    return run


def files(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder), to compare trees."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


class Exported(NamedTuple):
    out: Path
    predictor: Predictor  # the Keras model the command exported
    result: ExportResult  # what export_model returned to the command
    text: str  # what `unet-tf export` printed


class ExportFormatTester:
    fmt: str  # the name in EXPORT_FORMATS
    needs: tuple[str, ...] = ()  # modules the format needs; its tests skip without them
    float32: bool = True  # a mixed-precision model is exported as a float32 copy

    @property
    def format(self) -> ExportFormat:
        return EXPORT_FORMATS.get(self.fmt)

    def name(self, stem: str) -> str:
        return stem + (self.format.suffix or "")

    def main_file(self, out: Path) -> Path:
        """The file that holds an export: the file itself, or a folder's signature file."""
        folder_file = self.format.folder_file
        return out / folder_file if folder_file else out

    def copy(self, out: Path, folder: Path) -> Path:
        """Copy an export and its config into ``folder``, as a user moving it would."""
        if out.is_dir():
            return Path(shutil.copytree(out, folder / out.name))
        shutil.copy2(sidecar_config(out), folder)
        return Path(shutil.copy2(out, folder))

    @pytest.fixture(scope="class")
    def exported(self, tmp_path_factory) -> Exported:
        """``unet-tf export --overwrite`` over a previous export of ours."""
        for module in self.needs:
            pytest.importorskip(module, reason=f"{self.fmt} export needs {module}: .[export]")
        out = tmp_path_factory.mktemp(self.fmt) / self.name("model")
        if self.format.suffix is None:
            out.mkdir()
            write_marker(out, "export")
        self.main_file(out).write_bytes(PREVIOUS)
        sidecar_config(out).write_text("a previous config\n")
        calls = []

        def spy(predictor: Predictor, *args, **kwargs) -> ExportResult:
            calls.append((predictor, export_model(predictor, *args, **kwargs)))
            return calls[-1][1]

        run = bf16_run_in(tmp_path_factory.getbasetemp())
        args = ["export", str(run), "--format", self.fmt, "--out", str(out), "--overwrite"]
        stdout, stderr = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(exporter, "export_model", spy)
            with redirect_stdout(stdout), redirect_stderr(stderr):
                code = main(args)
        assert code == 0, stderr.getvalue()
        return Exported(out, *calls[0], stdout.getvalue())

    @pytest.fixture(scope="class")
    def reopened(self, exported, tmp_path_factory) -> Predictor:
        """The export moved elsewhere with its config and loaded, opened once for all tests."""
        return load_predictor(self.copy(exported.out, tmp_path_factory.mktemp("moved")))

    def test_export_reloads_in_its_runtime_and_matches_keras(self, exported):
        out, _, result, text = exported
        assert f"reloaded with {self.format.runtime}" in text and "max |difference|" in text
        assert self.main_file(out).is_file()
        config = out / "unet_tf.yaml" if out.is_dir() else out.with_name("model.unet_tf.yaml")
        assert config.is_file()
        assert result.max_difference < 1e-4
        assert any("mixed precision" in note for note in result.notes) == self.float32
        assert not any("fixed input size" in note for note in result.notes)  # dynamic shapes

    def test_predictions_through_load_predictor_match_keras(self, exported, reopened, tmp_path):
        network = exported.predictor.network
        keras_model = Predictor(float32_copy(network) if self.float32 else network, reopened.cfg)
        image = np.random.default_rng(1).integers(0, 256, (77, 101)).astype(np.uint8)
        for options in (InferenceOptions(tile=0), InferenceOptions(tile=32), InferenceOptions()):
            got = Predictor(reopened.network, reopened.cfg, options).predict(image)
            # the Keras model's compiled forward pass, traced once, applied the same way
            expected = Predictor(keras_model.forward, reopened.cfg, options).predict(image)
            np.testing.assert_allclose(got, expected, atol=1e-4)
        with pytest.raises(UserError, match="already an export"):
            export_model(reopened, self.fmt, tmp_path / self.name("again"))

    def test_overwrite_replaces_only_its_own_export(self, exported):
        predictor = exported.predictor
        out = exported.out
        assert self.main_file(out).read_bytes() != PREVIOUS
        assert RunConfig.load(sidecar_config(out)).data.size == 64
        assert not [p for p in out.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
        before = files(out.parent)
        with pytest.raises(UserError, match="already exists"):
            export_model(predictor, self.fmt, out)
        with pytest.raises(UserError, match="--out"):  # the model being exported
            export_model(predictor, self.fmt, out, overwrite=True, protected=[out])
        assert files(out.parent) == before

    def test_out_of_the_wrong_kind_is_refused(self, exported, tmp_path):
        predictor = exported.predictor
        suffix = self.format.suffix
        if suffix is None:  # a folder format: never over a file
            (tmp_path / "model").write_text("a file of the user's")
            with pytest.raises(UserError, match="is a file"):
                export_model(predictor, self.fmt, tmp_path / "model", overwrite=True)
        else:  # a file format: the file must be named for it, and not be a folder
            with pytest.raises(UserError, match=f"must end in {suffix}"):
                export_model(predictor, self.fmt, tmp_path / "model.bin")
            (tmp_path / self.name("folder")).mkdir()
            with pytest.raises(UserError, match="is a folder"):
                export_model(predictor, self.fmt, tmp_path / self.name("folder"))

    def test_a_failed_export_leaves_nothing_under_the_real_name(
        self, exported, tmp_path, monkeypatch
    ):
        def crash(predictor: Predictor, tmp: Path) -> NoReturn:
            """Half an export, then the failure a check against Keras raises."""
            if self.format.suffix is None:
                tmp.mkdir()
            self.main_file(tmp).write_bytes(b"half an export")
            raise UserError("the export differs from the Keras model; it was not kept")

        crashing = Registry("export format", "--format")
        crashing.add(self.fmt, replace(self.format, write=crash))
        monkeypatch.setattr(exporter, "EXPORT_FORMATS", crashing)
        out = self.copy(exported.out, tmp_path)
        before = files(tmp_path)
        for target in (out, tmp_path / self.name("new")):
            with pytest.raises(UserError, match="not kept"):
                export_model(exported.predictor, self.fmt, target, overwrite=True)
            assert files(tmp_path) == before

    def test_the_config_travels_with_the_export(self, exported, reopened, tmp_path):
        assert reopened.cfg.data.size == 64
        out = self.copy(exported.out, tmp_path)
        sidecar_config(out).unlink()
        with pytest.raises(UserError, match="export it again"):
            load_predictor(out)
