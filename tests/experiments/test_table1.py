"""experiments/table1.py --quick: the grid trains, scores, tabulates and resumes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, shared_path

SCRIPT = ROOT / "experiments" / "table1.py"


def table1(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_quick_grid_writes_real_scores_and_skips_finished_runs(tmp_path: Path):
    """One study's row trains (the other's would be the same work): it is scored and
    tabulated, the untrained row says "not run", and a rerun trains nothing."""
    shared_path("data", "ctc", "DIC-C2DH-HeLa")
    out = tmp_path / "out"
    first = table1("--quick", "--study", "1", "--out", out)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("$ unet-tf fit") == 1
    doc = (out / "table1.md").read_text()
    row = re.search(r"^\| scratch \| dice-focal \| (.*) \|$", doc, re.MULTILINE)
    assert row, doc
    dice = float(re.match(r"\*\*([0-9.]+)\*\* \(1\)", row.group(1)).group(1))
    iou, seg = (float(x) for x in re.findall(r"(?:IoU|SEG) ([0-9.]+)", row.group(1)))
    assert 0 <= dice <= 1 and 0 <= iou <= 1 and 0 <= seg <= 1
    assert iou <= dice  # IoU = D / (2 - D) <= Dice, per image and so on average
    assert re.search(r"^\| scratch \| bce \| not run \|$", doc, re.MULTILINE), doc
    assert "1 epochs x 2 steps x batch 2" in doc
    hours = float(re.search(r"1 finished runs, ([0-9.]+) CPU hours", doc).group(1))
    assert 0 <= hours < 1
    assert (out / "table1.png").stat().st_size > 0

    again = table1("--quick", "--study", "1", "--out", out)  # finished runs are not retrained
    assert again.returncode == 0, again.stderr[-2000:]
    assert "$ unet-tf" not in again.stdout
    assert (out / "table1.md").read_text().count("| scratch |") == 2
