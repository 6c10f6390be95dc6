"""The public Python API: what `import unet_tf` offers, and docs/api.md run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unet_tf

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_lists_its_api():
    names = set(dir(unet_tf))
    expected = {"Unet", "build_model", "load_model", "plan", "fit", "tune", "predict", "evaluate"}
    assert expected | {"RunConfig", "folder_dataset", "__version__"} <= names
    assert callable(unet_tf.Unet) and unet_tf.RunConfig().train.lr == 1e-3
    with pytest.raises(AttributeError):
        _ = unet_tf.no_such_thing


def test_a_saved_model_reloads_after_only_import_unet_tf(tmp_path):
    """The custom layers (PerImageStandardize...), losses and metrics are registered
    by the package import alone, in a fresh interpreter; and that import leaves the
    bioimage.io packages (seconds to import, needed only to export there) unimported."""
    from unet_tf.training.losses import DiceFocalLoss
    from unet_tf.training.metrics import Dice

    model = unet_tf.Unet("none", input_shape=(None, None, 1), base_filters=4, depth=2)
    model.compile(optimizer="adam", loss=DiceFocalLoss(), metrics=[Dice()])
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    script = (
        "import sys, numpy as np, keras, unet_tf\n"
        "print(sorted(m for m in sys.modules if m.startswith('bioi')))\n"
        "d = sys.argv[1]\n"
        "m = keras.saving.load_model(d + '/model.keras')\n"
        "got = m.predict(np.load(d + '/x.npy'), verbose=0)\n"
        "assert np.allclose(got, np.load(d + '/expected.npy'), atol=1e-6)\n"
        "print(type(m.loss).__name__, [type(l).__name__ for l in m.layers][1])\n"
    )
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported, loaded = done.stdout.strip().splitlines()[-2:]
    assert imported == "[]" and "DiceFocalLoss" in loaded


def test_predict_takes_one_image_or_a_batch(tmp_path):
    model = unet_tf.Unet("none", input_shape=(None, None, 1), base_filters=4, depth=2)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 48)).astype(np.uint8)
    one = unet_tf.predict(model, image)
    assert one.shape == (40, 48, 1) and one.min() >= 0 and one.max() <= 1
    batch = unet_tf.predict(model, np.stack([image, image[::-1]])[..., None])
    assert batch.shape == (2, 40, 48, 1)
    np.testing.assert_allclose(batch[0], one, atol=1e-5)
    listed = unet_tf.predict(model, [image, image[:32, :40]])
    assert [p.shape for p in listed] == [(40, 48, 1), (32, 40, 1)]


def test_configure_sets_fields_by_name_without_changing_the_input():
    base = unet_tf.RunConfig()
    cfg = unet_tf.configure(base, epochs=3, backbone="vgg16", size=128)
    assert (cfg.train.epochs, cfg.model.backbone, cfg.data.size) == (3, "vgg16", 128)
    assert (base.train.epochs, base.model.backbone, base.data.size) == (None, "none", 256)
    with pytest.raises(TypeError, match="nope"):
        unet_tf.configure(nope=1)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.slow
def test_docs_api_md_runs(tmp_path, monkeypatch):
    """Every code block of docs/api.md, in order, in one namespace."""
    blocks = python_blocks((ROOT / "docs" / "api.md").read_text())
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"docs/api.md block {i + 1} failed: {exc!r}\n{block}") from exc
    assert namespace["probabilities"].shape == (*namespace["image"].shape, 1)
    assert (tmp_path / "runs" / "api-demo" / "metrics.json").is_file()
    assert 0 <= namespace["scores"].mean()["dice"] <= 1


def test_plan_from_python(tmp_path):
    """``unet_tf.plan`` is the code behind ``unet-tf plan``. The other issue-13 tools are
    called through ``unet_tf`` where they are tested: ``unet_tf.fit(all_folds=True)`` in
    tests/training/test_folds.py, ``unet_tf.tune`` in tests/training/test_tune.py."""
    from conftest import write_folder_dataset

    data = write_folder_dataset(tmp_path / "data", n=4, size=64, seed=2)
    plan = unet_tf.plan(data)
    assert plan.fingerprint.images == 4 and plan.config.data.size == 256
    assert set(plan.reasons) >= {"target", "input", "depth", "loss"}
