"""Shared fixtures: tiny synthetic datasets, the real data in ../shared, tiny configs."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One intra-op thread per process: the suite runs a worker per core, and the tiny test
# models gain nothing from a second thread, which would only spin on the other's core.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# Per-machine measurements (precision "auto") go to a folder of the test run, not ~/.cache.
os.environ.setdefault("UNET_TF_CACHE", tempfile.mkdtemp(prefix="unet-tf-cache-"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNET_TF_SHARED", ROOT.parent / "shared"))
# Seconds each test module took (setup, call and teardown summed), as last measured by
# `pytest -n 2 --dist loadfile --store-durations`. Only the order of the run depends on it.
DURATIONS = Path(__file__).with_name("durations.json")


def stored_durations() -> dict[str, float]:
    return json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}


def module_of(nodeid: str) -> str:
    """The test module a node id belongs to: the unit `--dist loadfile` hands out."""
    return nodeid.split("::")[0]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"write each module's measured seconds to {DURATIONS.name} (orders later runs)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest modules first, so that the two xdist workers finish together.

    `--dist loadfile` hands out whole modules in collection order, and xdist's own
    reordering (by test count) sent several of the longest modules last: one worker then
    ran alone for the final minute. Longest first is the classic list-scheduling fix.
    Unmeasured modules go first, since they may be long; the sort is stable.
    """
    seconds = stored_durations()
    items.sort(key=lambda item: -seconds.get(module_of(item.nodeid), float("inf")))


_module_seconds: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _module_seconds[module_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With --store-durations, record the modules' seconds (in the controller, atomically).

    The modules this run measured replace their old values; the others keep theirs, so a
    partial run refreshes only what it ran. Modules that no longer exist are dropped.
    """
    config = session.config
    if not config.getoption("--store-durations") or hasattr(config, "workerinput"):
        return
    from unet_tf.atomic import atomic_write_text

    seconds = stored_durations()
    seconds.update({k: round(v, 1) for k, v in _module_seconds.items()})
    kept = {k: v for k, v in sorted(seconds.items()) if (ROOT / k).exists()}
    atomic_write_text(DURATIONS, json.dumps(kept, indent=1) + "\n")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real data at {path} (../shared is not next to the repo)")
    return path


def disk_image(size: int, rng: np.random.Generator, cx=None, cy=None, r=None):
    """A noisy grey image with a bright disk, and its mask: a task a U-Net learns in steps."""
    yy, xx = np.mgrid[:size, :size]
    cx = rng.integers(size // 4, 3 * size // 4) if cx is None else cx
    cy = rng.integers(size // 4, 3 * size // 4) if cy is None else cy
    r = rng.integers(size // 8, size // 4) if r is None else r
    mask = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r**2).astype(np.uint8)
    image = 60 + 120 * mask + rng.normal(0, 10, mask.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask * 255


def write_folder_dataset(
    root: Path, n: int = 6, size: int = 64, seed: int = 0, rgb: bool = False
) -> Path:
    """images/ + masks/ with ``n`` disk images as PNG."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = disk_image(size, rng)
        if rgb:
            image = np.stack([image] * 3, axis=-1)
        Image.fromarray(image).save(root / "images" / f"img {i:02d}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"img {i:02d}.png")
    return root


@pytest.fixture
def folder_dataset(tmp_path: Path) -> Path:
    return write_folder_dataset(tmp_path / "data")


@pytest.fixture
def tiny_config():
    """A RunConfig for a U-Net small enough to train in seconds at 64 px."""
    from unet_tf.config import RunConfig

    def make(data: Path | None = None, **train):
        cfg = RunConfig()
        cfg.data.data = None if data is None else str(data)
        cfg.data.size = 64
        cfg.model.base_filters = 4
        cfg.model.depth = 2
        cfg.train.epochs = 2
        cfg.train.batch_size = 2
        cfg.train.precision = "float32"
        for key, value in train.items():
            setattr(cfg.train, key, value)
        return cfg

    return make


# The smallest network `unet-tf fit` trains in seconds at 64 px, for CLI tests.
TINY_FIT = ["--size", "64", "--base-filters", "4", "--depth", "2", "--batch-size", "2"]
TINY_FIT += ["--precision", "float32", "--quiet"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(data, run): a tiny U-Net trained once per test process, for the CLI tests.

    Six 64 px disk images (five train, one validates), two epochs, ``--threshold auto``.
    Training one run per module cost each module a fit; this one is shared, so tests
    only read it, and copy it before changing it (``shutil.copytree``).
    """
    from unet_tf.cli import main

    root = tmp_path_factory.mktemp("tiny-run")
    data = write_folder_dataset(root / "data", n=6)
    run_dir = root / "run"
    args = ["fit", "--data", data, "--run-dir", run_dir, "--epochs", "2", "--threshold", "auto"]
    assert main([str(a) for a in [*args, *TINY_FIT]]) == 0
    return data, run_dir


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run the CLI in this process: exit code, stdout, stderr."""
    from unet_tf.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
