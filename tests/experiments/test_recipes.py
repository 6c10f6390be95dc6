"""experiments/recipes.py: parts that never meet, and the time-to-accuracy cells."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "experiments"))  # as when run: it imports table1 beside it
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


def row(seed: int, dice: str, seg: str = "", reach: str = "") -> dict[str, str]:
    return {
        "machine": "a CPU", "budget": "10m", "dataset": "hela", "recipe": "plan",
        "seed": str(seed), "dice": dice, "auc": "", "seg": seg, "reach": reach,
        "date": "2026-12-06",
    }  # fmt: skip


def test_the_ledger_keeps_one_row_per_run_and_adds_seeds(tmp_path):
    ledger = tmp_path / "recipes.csv"
    recipes.record(ledger, row(1, "0.9"))
    recipes.record(ledger, row(0, "0.8"))
    recipes.record(ledger, row(1, "0.95"))  # the same run scored again replaces its row
    rows = recipes.read_ledger(ledger)
    assert [(r["seed"], r["dice"]) for r in rows] == [("0", "0.8"), ("1", "0.95")]
    assert [p.name for p in tmp_path.iterdir()] == ["recipes.csv"]  # no temporary left


def test_a_cell_is_mean_and_sample_sd_over_seeds():
    rows = [row(0, "0.90", "0.80", "1.0 CPU-min (30 s), epoch 2"), row(1, "0.94", "0.86", "")]
    # mean 0.92; sd sqrt(((0.02)^2 + (0.02)^2) / 1) = 0.0283; SEG 0.83 ± 0.0424
    assert recipes.cell(rows) == "**0.920 ± 0.028** (2)<br>SEG 0.830 ± 0.042"
    assert recipes.cell(rows[:1]) == "**0.900** (1)<br>SEG 0.800"
    assert recipes.cell([]) == "not run"
    assert recipes.reach_cell(rows[:1]) == "seed 0: 1.0 CPU-min (30 s), epoch 2"


def test_the_doc_keeps_machines_apart(tmp_path):
    other = {**row(0, "0.50"), "machine": "a slower CPU"}
    doc = recipes.render([row(0, "0.90", "0.80"), row(1, "0.94", "0.86"), other], "10m", "x.csv")
    ours, slower = doc.split("## a CPU")[1].split("## a slower CPU")
    assert "**0.920 ± 0.028** (2)<br>SEG 0.830 ± 0.042" in ours and "0.500" not in ours
    assert "**0.500** (1)" in slower and "Seeds 0;" in slower
