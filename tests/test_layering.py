"""The package's imports run only downward (see the layer table in README.md).

Every import in every module, including those inside functions, is read with ``ast``;
an import of a higher layer fails the test with the file, the line and both layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unet_tf"

# Lower numbers are lower layers; a module may import its own layer and those below.
LAYERS = {
    "cli": 6,
    "training": 5,
    "planning": 5,  # fingerprints data and times training steps
    "evaluation": 4,
    "inference": 3,
    "export": 3,
    "models": 2,
    "data": 2,
    "runtime": 1,
    # the shared base: configuration, errors, files, run directories, figures
    "config": 0,
    "errors": 0,
    "atomic": 0,
    "rundir": 0,
    "viz": 0,
    "registry": 0,
}
# The package root is the public API and registers every custom object: it sits on top.
TOP = {"__init__", "custom_objects", "api"}


def layer_of(module: str) -> int | None:
    """The layer of a dotted ``unet_tf`` module, or None for the API on top."""
    parts = module.split(".")
    if parts[0] != "unet_tf":
        return None
    if len(parts) == 1 or parts[1] in TOP:
        return 99
    return LAYERS[parts[1]]


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "unet_tf":  # from unet_tf import X: X is a module or the API
                found += [(node.lineno, f"unet_tf.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "unet_tf"]


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "sample_data" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path):
    module = ".".join(("unet_tf", *path.relative_to(PACKAGE).with_suffix("").parts))
    own = layer_of(module.removesuffix(".__init__"))
    upward = []
    for line, name in imports(path):
        if name == "unet_tf.__version__":
            continue  # a constant of the package root, set before anything is imported
        target = layer_of(name)
        if target is not None and target > own:
            upward.append(f"line {line}: {name} (layer {target} > {own})")
    assert not upward, f"{path.relative_to(PACKAGE)} imports upward: {'; '.join(upward)}"


def test_every_top_level_name_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    names = {n for n in names if not n.startswith(("_", ".")) and n != "sample_data"}
    unplaced = sorted(names - set(LAYERS) - TOP)
    assert not unplaced, f"add these to the layer table: {unplaced}"
