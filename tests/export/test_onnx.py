"""ONNX files, run by onnxruntime: also through ``predict`` and ``evaluate``."""

from __future__ import annotations

import numpy as np
from export_tester import ExportFormatTester
from PIL import Image

from unet_tf.cli import main


class TestOnnx(ExportFormatTester):
    fmt = "onnx"
    needs = ("onnxruntime", "tf2onnx", "onnx")

    def test_cli_predicts_and_evaluates_with_the_export(self, exported, tmp_path, capsys):
        from conftest import write_folder_dataset

        data = write_folder_dataset(tmp_path / "data", n=2)
        out = str(exported.out)
        assert main(["predict", out, str(data / "images"), "--out", str(tmp_path / "p")]) == 0
        mask = np.array(Image.open(tmp_path / "p" / "img 00_mask.png"))
        assert mask.shape == (64, 64)
        assert main(["evaluate", out, "--data", str(data)]) == 0
        assert "mean" in capsys.readouterr().out
