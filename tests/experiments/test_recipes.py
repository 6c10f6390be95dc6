"""experiments/recipes.py: parts that never meet, and the time-to-accuracy cells."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("recipes", ROOT / "experiments" / "recipes.py")
recipes = importlib.util.module_from_spec(spec)
sys.modules["recipes"] = recipes  # its dataclasses look their module up while it loads
spec.loader.exec_module(recipes)


@pytest.mark.parametrize("name", sorted(recipes.DATASETS))
def test_parts_mirror_the_layout_and_do_not_overlap(name, tmp_path):
    data = recipes.DATASETS[name]
    if not data.source.is_dir():
        pytest.skip(f"{data.source} is absent (../shared/data is not on this machine)")
    train = recipes.subset(data.source, tmp_path / "train", data.train)
    test = recipes.subset(data.source, tmp_path / "test", data.test)
    files = {
        part: {p.relative_to(part) for p in part.rglob("*") if p.is_file()}
        for part in (train, test)
    }
    assert files[train] and files[test] and not files[train] & files[test]
    numbers = {int(recipes.NUMBER.search(p.name).group(1)) for p in files[test]}
    assert numbers <= set(data.test)
    if name != "drive":  # frames and slices, not DRIVE's separate eyes: a gap between parts
        assert min(data.test) - max(data.train) >= 2
    # every test image keeps its annotation beside it, in the source's own folders
    assert {p.parts[0] for p in files[test]} == {p.parts[0] for p in files[train]}


def test_time_to_reads_cpu_minutes_at_the_first_epoch_that_reached(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,seconds,cpu_seconds,val_dice\n1,30,55,0.70\n2,60,114,0.91\n3,90,170,0.95\n"
    )
    assert recipes.time_to(tmp_path, 0.9) == "1.9 CPU-min (60 s), epoch 2"
    assert recipes.time_to(tmp_path, 0.99) == "not reached (0.950 after 2.8 CPU-min (90 s))"
    assert recipes.time_to(tmp_path / "absent", 0.9) == "not run"


def test_time_to_falls_back_to_wall_seconds_for_histories_without_cpu_time(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,seconds,val_dice\n1,30,0.85\n")
    assert recipes.time_to(tmp_path, 0.8) == "30 s, epoch 1"
