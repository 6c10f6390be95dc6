"""Progress bars: off by default, off for --quiet, a pipe or CI, and a bar when on."""

from __future__ import annotations

import io

import numpy as np
import pytest

from unet_tf.inference.tiling import predict_tiled
from unet_tf.runtime import progress as progress_module
from unet_tf.runtime.progress import enabled, progress, set_enabled, wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def bars_on():
    set_enabled(True)
    yield
    set_enabled(False)


def test_wanted_only_on_an_interactive_stream_without_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert wanted(stream=Terminal())
    assert not wanted(quiet=True, stream=Terminal())
    assert not wanted(stream=io.StringIO())  # a pipe or a log file
    monkeypatch.setenv("CI", "true")
    assert not wanted(stream=Terminal())


def test_library_default_is_silent():
    assert not enabled()
    sink = io.StringIO()
    assert list(progress(range(3), file=sink)) == [0, 1, 2]
    assert sink.getvalue() == ""


def test_bar_shows_counts_when_enabled(bars_on):
    sink = io.StringIO()
    assert list(progress(range(5), desc="predict", file=sink)) == list(range(5))
    assert "predict" in sink.getvalue() and "5/5" in sink.getvalue()


def test_tiled_prediction_reports_its_batches(bars_on, monkeypatch):
    sink = io.StringIO()
    real = progress_module.progress
    monkeypatch.setattr(
        "unet_tf.inference.tiling.progress", lambda *a, **k: real(*a, **{**k, "file": sink})
    )
    image = np.ones((64, 64, 1), np.float32)
    out = predict_tiled(lambda b: b, image, tile=16, overlap=0.0, batch_size=4)
    np.testing.assert_allclose(out, 1.0)
    assert "tiles" in sink.getvalue() and "/4 " in sink.getvalue()  # 16 tiles in 4 batches
