"""The GPU image's pip constraints: ``requirements.lock`` less tensorflow-cpu.

The GPU image starts from ``tensorflow/tensorflow:2.21.0-gpu``. The unet-tf wheel
requires no TensorFlow distribution (TensorFlow is the ``[cpu]``/``[gpu]`` extra), so
installing it without extras keeps the base image's CUDA build; these constraints keep
every other dependency at its locked version. ``tensorflow-cpu`` is dropped from them:
it installs the same ``tensorflow`` module and would silently replace the CUDA build.

Usage (build stage): python3 gpu_pins.py SRC OUT_DIR
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


def gpu_constraints(lock: str) -> list[str]:
    """The lock file's pins, less tensorflow-cpu."""
    lines = [line.strip() for line in lock.splitlines()]
    return [line for line in lines if line and not line.startswith("#") and name(line) != CPU_BUILD]


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    constraints = gpu_constraints((src / "requirements.lock").read_text())
    (out / "constraints.txt").write_text("\n".join(constraints) + "\n")


if __name__ == "__main__":
    main()
