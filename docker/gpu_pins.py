"""Make the GPU image depend on TensorFlow's CUDA build instead of tensorflow-cpu.

The GPU image starts from ``tensorflow/tensorflow:2.21.0-gpu``. ``tensorflow-cpu``
installs the same ``tensorflow`` module, so letting pip add it would silently replace
the CUDA build. In the image's build stage this script rewrites the copied
``pyproject.toml`` so that the wheel requires ``tensorflow`` at the same version (which
the base image already has), and writes ``requirements.lock`` without tensorflow-cpu
as pip constraints, so every other dependency keeps its locked version.

Usage (build stage only; it edits SRC/pyproject.toml): python3 gpu_pins.py SRC OUT_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CPU_BUILD = "tensorflow-cpu"


def name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    first = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", first).lower()


def gpu_pyproject(text: str) -> str:
    """``pyproject.toml`` with the tensorflow-cpu dependency swapped for tensorflow."""
    swapped, count = re.subn(r'"tensorflow[-_]cpu(\s*[=<>!~][^"]*)"', r'"tensorflow\1"', text)
    if count != 1:
        raise SystemExit(f"expected one tensorflow-cpu dependency in pyproject.toml, found {count}")
    return swapped


def gpu_constraints(lock: str) -> list[str]:
    """The lock file's pins, less tensorflow-cpu."""
    lines = [line.strip() for line in lock.splitlines()]
    return [line for line in lines if line and not line.startswith("#") and name(line) != CPU_BUILD]


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(gpu_pyproject(pyproject.read_text()))
    constraints = gpu_constraints((src / "requirements.lock").read_text())
    (out / "constraints.txt").write_text("\n".join(constraints) + "\n")


if __name__ == "__main__":
    main()
