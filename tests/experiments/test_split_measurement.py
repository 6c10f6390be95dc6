"""experiments/splits.py: the far-away test block is disjoint from everything a run sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, shared_path


def frame_numbers(folder: Path) -> list[int]:
    return sorted(int(p.stem[1:]) for p in (folder / "01").glob("t*.tif"))


def test_test_block_is_the_last_frames_after_a_gap(tmp_path: Path):
    shared_path("data", "ctc", "PhC-C2DH-U373")
    shared_path("data", "ctc", "DIC-C2DH-HeLa")
    doc = tmp_path / "table1.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "splits.py"), "--table-only",
         "--out", str(tmp_path / "out"), "--doc", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name, total in [("hela", 60), ("u373", 115)]:
        pool = frame_numbers(tmp_path / "out" / "data" / name / "pool")
        test = frame_numbers(tmp_path / "out" / "data" / name / "test")
        assert test[-1] == total - 1 and len(test) == round(total * 0.15)
        assert pool == list(range(test[0] - 3))  # 3 frames left out before the test block
        masks = list((tmp_path / "out" / "data" / name / "test").glob("01_*/SEG/man_seg*.tif"))
        assert {int(m.stem[7:]) for m in masks} == set(test)
        assert all(m.is_symlink() for m in masks)  # nothing copied, nothing written to shared
    text = doc.read_text()
    assert "<!-- splits:begin -->" in text and "| u373 | blocked | | not run |" in text
