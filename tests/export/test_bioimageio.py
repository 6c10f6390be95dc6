"""bioimage.io model packages: validated by bioimageio.core, reopened by ``predict``."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import sys
import zipfile

import numpy as np
import pytest
import yaml
from export_tester import ExportFormatTester, bf16_run_in

from unet_tf.cli import main
from unet_tf.config import RunConfig
from unet_tf.data.formats.registry import sample_data_dir
from unet_tf.data.io import read_image
from unet_tf.errors import UserError
from unet_tf.export import bioimageio
from unet_tf.export.common import float32_copy
from unet_tf.export.exporter import export_model
from unet_tf.inference.predictor import Predictor, load_predictor


def package_rdf(path) -> dict:
    with zipfile.ZipFile(path) as package:
        return yaml.safe_load(package.read("rdf.yaml"))


def package_array(path, name: str) -> np.ndarray:
    with zipfile.ZipFile(path) as package:
        return np.load(io.BytesIO(package.read(name)))


class TestBioimageio(ExportFormatTester):
    fmt = "bioimageio"
    needs = ("bioimageio.core",)

    def test_the_package_passed_bioimageio_core_and_describes_the_model(self, exported):
        out, _, result, text = exported
        assert "bioimageio.core test_model: passed" in text
        assert any("names its author" in note for note in result.notes)  # no --meta given
        rdf = package_rdf(out)
        assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
        (raw,) = rdf["inputs"]
        (probs,) = rdf["outputs"]
        assert [a.get("id", a["type"]) for a in raw["axes"]] == ["batch", "y", "x", "channel"]
        # trained on images resized to 64 px, resized inside: any side from the minimum
        assert raw["axes"][1]["size"] == {"min": 4, "step": 1}
        assert probs["axes"][1]["size"] == {"tensor_id": "raw", "axis_id": "y"}
        assert probs["axes"][3]["channel_names"] == ["foreground"]
        assert {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}} in raw[
            "preprocessing"
        ]
        assert set(rdf["weights"]) == {"tensorflow_saved_model_bundle"}  # ONNX cannot resize
        assert "version" not in rdf and "git_repo" not in rdf  # not given: left out, not null
        weights = rdf["weights"]["tensorflow_saved_model_bundle"]
        assert weights["source"] == bioimageio.WEIGHTS_FILE
        assert rdf["license"] == "CC-BY-4.0" and rdf["cite"][0]["doi"].startswith("10.1007")
        with zipfile.ZipFile(out) as package:
            names = set(package.namelist())
        assert {"README.md", "cover.png", "unet_tf.yaml", bioimageio.WEIGHTS_FILE} <= names

    def test_the_test_output_is_our_predictors_output_and_validates_again(self, exported):
        out, predictor = exported.out, exported.predictor
        test_input = package_array(out, "test_input.npy")
        test_output = package_array(out, "test_output.npy")
        assert test_input.shape == (1, 512, 512, 1) and test_input.dtype == np.float32
        assert test_input.std() > 0  # the bundled ISBI 2012 slice, not a blank array
        keras_predictor = Predictor(float32_copy(predictor.network), predictor.cfg)
        expected = keras_predictor.untiled().predict(test_input[0])
        np.testing.assert_allclose(test_output[0], expected, atol=1e-4)
        assert bioimageio.validate_package(out).startswith("passed")

    def test_a_package_that_does_not_reproduce_its_output_fails_validation(
        self, exported, tmp_path
    ):
        broken = tmp_path / "broken.zip"
        with zipfile.ZipFile(exported.out) as source, zipfile.ZipFile(broken, "w") as target:
            for name in source.namelist():
                data = source.read(name)
                if name == "test_output.npy":  # what the weights compute, plus 0.1
                    buffer = io.BytesIO()
                    np.save(buffer, np.load(io.BytesIO(data)) + 0.1)
                    data = buffer.getvalue()
                elif name == "rdf.yaml":  # the checksum would fail first: drop it
                    rdf = yaml.safe_load(data)
                    del rdf["outputs"][0]["test_tensor"]["sha256"]
                    data = yaml.safe_dump(rdf).encode()
                target.writestr(name, data)
        with pytest.raises(UserError, match=r"test_model failed .*Reproduce test outputs") as error:
            bioimageio.validate_package(broken)
        assert "\n" not in str(error.value)

    def test_meta_fields_and_test_image_reach_the_package(
        self, tmp_path_factory, tmp_path, monkeypatch
    ):
        slice_path = sorted((sample_data_dir() / "images").iterdir())[0]
        meta = tmp_path / "meta.yaml"
        meta.write_text(
            yaml.safe_dump(
                {
                    "name": "EM membranes",
                    "authors": [{"name": "Ada Lovelace", "affiliation": "Example Lab"}],
                    "cite": [{"text": "Our paper", "doi": "10.1000/xyz123"}],
                    "license": "MIT",
                    "tags": ["em", "membranes"],
                    "version": "1.2.0",
                    "test_image": os.path.relpath(slice_path, tmp_path),
                }
            )
        )
        run = tmp_path / "patch-run"  # trained on 64 px patches: runs at full resolution
        shutil.copytree(bf16_run_in(tmp_path_factory.getbasetemp()), run)
        cfg = RunConfig.load(run / "config.yaml")
        cfg.data.patch = 64
        cfg.save(run / "config.yaml")
        out = tmp_path / "em.zip"
        predictor = load_predictor(run)
        result = export_model(predictor, "bioimageio", out, meta=meta)
        assert not any("names its author" in note for note in result.notes)
        assert any("test_model: passed" in note for note in result.notes)
        rdf = package_rdf(out)
        # full resolution: sides are multiples of the network's 4 px, and tiles work
        assert rdf["inputs"][0]["axes"][1]["size"] == {"min": 4, "step": 4}
        if importlib.util.find_spec("tf2onnx"):  # the bare network, as ONNX, validated too
            onnx_weights = rdf["weights"]["onnx"]
            assert onnx_weights["parent"] == "tensorflow_saved_model_bundle"
            assert onnx_weights["opset_version"] >= 7
        assert rdf["name"] == "EM membranes" and rdf["license"] == "MIT"
        assert rdf["authors"] == [{"name": "Ada Lovelace", "affiliation": "Example Lab"}]
        assert rdf["cite"] == [{"text": "Our paper", "doi": "10.1000/xyz123"}]
        assert rdf["version"] == "1.2.0" and rdf["tags"] == ["em", "membranes"]
        expected = read_image(slice_path).astype(np.float32)
        np.testing.assert_array_equal(package_array(out, "test_input.npy")[0, ..., 0], expected)
        # the spec's own checks (here the licence id) come back naming the field, before
        # any weights are written or converted
        meta.write_text(yaml.safe_dump({"license": "not-a-licence"}))

        def no_conversion(*args, **kwargs):
            raise AssertionError("a refused licence must fail before the weights are written")

        monkeypatch.setattr(bioimageio, "write_archive", no_conversion)
        with pytest.raises(UserError, match="invalid at license"):
            export_model(predictor, "bioimageio", tmp_path / "bad.zip", meta=meta)
        assert not (tmp_path / "bad.zip").exists()
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == ["em.unet_tf.yaml", "em.zip", "meta.yaml", "patch-run"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a list", "must be a YAML mapping"),
        ("author: [Ada]", "unknown field 'author'"),
        ("authors: Ada", "authors must be a non-empty list"),
        ("authors: [{affiliation: Lab}]", r"authors\[0\] must be a mapping with a name"),
        ("authors: [{name: Ada, phone: 1}]", r"authors\[0\] must be .*not phone"),
        ("cite: [{text: Paper}]", r"cite\[0\] must be a mapping with a doi or a url"),
        ("name: ''", "name must be a non-empty text"),
        ("tags: em", "tags must be a list of words"),
        ("covers: [missing.png]", "covers file missing.png not found"),
        ("test_image: missing.tif", "test_image file missing.tif not found"),
        ("name: [unclosed", "cannot read it"),
    ],
)
def test_meta_errors_name_the_field(tmp_path, text, message):
    meta = tmp_path / "meta.yaml"
    meta.write_text(text)
    with pytest.raises(UserError, match=message) as error:
        bioimageio.read_meta(meta)
    assert "\n" not in str(error.value) and str(meta) in str(error.value)


@pytest.mark.parametrize(
    "fields, where",
    [
        ({"license": "not-a-licence"}, "license"),
        ({"version": "x.y!"}, "version"),
        ({"git_repo": "ftp://example.org/data"}, "git_repo"),
        ({"authors": [{"name": "Ada", "orcid": "123"}]}, "authors.0.orcid"),
        ({"cite": [{"text": "Paper", "doi": "not-a-doi"}]}, "cite.0.doi"),
    ],
)
def test_meta_the_spec_refuses_names_the_field(fields, where):
    pytest.importorskip("bioimageio.spec", reason="the spec's checks need bioimageio.spec")
    with pytest.raises(UserError, match=f"invalid at {where}: ") as error:
        bioimageio.check_meta_against_spec(bioimageio.Meta(**fields))
    assert "\n" not in str(error.value) and len(str(error.value)) < 300
    bioimageio.check_meta_against_spec(bioimageio.Meta())  # the defaults pass


def test_meta_defaults_cite_the_unet_paper():
    meta = bioimageio.read_meta(None)
    assert meta.license == "CC-BY-4.0" and meta.cite == [bioimageio.UNET_CITATION]
    assert meta.authors == [] and meta.test_image is None


def test_without_the_extra_the_format_names_the_install(
    tmp_path, tmp_path_factory, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)  # import now fails
    run = bf16_run_in(tmp_path_factory.getbasetemp())
    out = tmp_path / "model.zip"
    code = main(["export", str(run), "--format", "bioimageio", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "unet-tf[bioimageio]"' in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_meta_is_refused_for_other_formats(tmp_path, tmp_path_factory, capsys):
    meta = tmp_path / "meta.yaml"
    meta.write_text("name: x\n")
    run = bf16_run_in(tmp_path_factory.getbasetemp())
    args = ["export", str(run), "--out", str(tmp_path / "sm"), "--meta", str(meta)]
    assert main(args) == 2
    assert "--meta applies to --format bioimageio only" in capsys.readouterr().err


def test_a_zip_that_is_not_a_package_is_not_an_export(tmp_path):
    other = tmp_path / "data.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("images/a.png", b"")
    assert not bioimageio.is_package(other)
    with pytest.raises(UserError, match="not a model"):
        load_predictor(other)
