"""experiments/recipes.py cuts each dataset into training and test parts that never meet."""

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
