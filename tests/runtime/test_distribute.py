"""tf.distribute: strategy choice, TF_CONFIG, chief-only writing, and real multi-device runs.

Runs with several devices need the CPU split into logical devices before TensorFlow
starts, and multiworker runs need several processes, so those tests (marked
``distributed``) launch fresh processes with hard timeouts, on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_folder_dataset

from unet_tf.cli import main
from unet_tf.config import RunConfig
from unet_tf.errors import UserError
from unet_tf.rundir import config_differences
from unet_tf.runtime.cpu import cpu_supports_bf16, describe_cpu
from unet_tf.runtime.distribute import (
    Distribution,
    Task,
    check_batch,
    cluster_failures,
    every_replica,
    lr_factor,
    make_distribution,
    parse_device,
    read_tf_config,
    replicas_in_sync,
    resolve_strategy,
    shard_by_data,
    writable_dir,
)
from unet_tf.runtime.info import environment_report, format_report
from unet_tf.runtime.keras_internals import fix_multiworker_fit
from unet_tf.runtime.precision import measured_cpu_precision, resolve_precision
from unet_tf.runtime.xla import use_xla
from unet_tf.training.fit import build_compiled_model

HERE = Path(__file__).resolve().parent
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONPATH": str(HERE.parents[1]),  # the repository root
}
ENV.pop("TF_CONFIG", None)
FIT = ["--size", "32", "--base-filters", "4", "--depth", "2", "--batch-size", "4"]
FIT += ["--steps-per-epoch", "2", "--precision", "float32", "--quiet"]


def tf_config(workers: list[str], index: int, kind: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": kind, "index": index}})


# --- TF_CONFIG, devices and the strategy name -------------------------------------


def test_tf_config_makes_worker_zero_the_chief_unless_a_chief_task_exists():
    workers = ["127.0.0.1:1", "127.0.0.1:2"]
    assert read_tf_config("") is None
    first, second = read_tf_config(tf_config(workers, 0)), read_tf_config(tf_config(workers, 1))
    assert (first.chief, second.chief, first.workers) == (True, False, 2)
    spec = {
        "cluster": {"chief": ["h:1"], "worker": workers},
        "task": {"type": "worker", "index": 0},
    }
    with_chief = read_tf_config(json.dumps(spec))
    assert (with_chief.chief, with_chief.workers, str(with_chief)) == (False, 3, "worker 0")
    spec["task"] = {"type": "chief", "index": 0}
    assert read_tf_config(json.dumps(spec)).chief


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        ('{"cluster": {"worker": ["h:1"]}}', '"task"'),
        (
            '{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "ps", "index": 0}}',
            "ps",
        ),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}', "not in"),
        ('{"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}', "list"),
    ],
)
def test_bad_tf_config_is_a_user_error(raw, message):
    with pytest.raises(UserError, match=message):
        read_tf_config(raw)


@pytest.mark.parametrize(
    "name, expected",
    [("GPU:1", "/device:GPU:1"), ("gpu:0", "/device:GPU:0"), ("/gpu:2", "/device:GPU:2"),
     ("/device:CPU:1", "/device:CPU:1"), ("3", "/device:GPU:3"), (" cpu:0 ", "/device:CPU:0")],
)  # fmt: skip
def test_device_names_are_normalised(name, expected):
    assert parse_device(name) == expected


@pytest.mark.parametrize("name", ["TPU:0", "GPU:x", "GPU", ""])
def test_unreadable_device_is_a_user_error(name):
    with pytest.raises(UserError, match="--devices"):
        parse_device(name)


def test_auto_picks_multiworker_then_mirrored_then_none():
    two = Task("worker", 0, 2)
    assert resolve_strategy("auto", None, None, gpus=0) == "none"
    assert resolve_strategy("auto", None, None, gpus=1) == "none"
    assert resolve_strategy("auto", None, None, gpus=4) == "mirrored"
    assert resolve_strategy("auto", ["GPU:0", "GPU:1"], None, gpus=0) == "mirrored"
    assert resolve_strategy("auto", None, two, gpus=4) == "multiworker"
    assert resolve_strategy("auto", None, Task("worker", 0, 1), gpus=0) == "none"
    assert resolve_strategy("mirrored", None, None, gpus=0) == "mirrored"


@pytest.mark.parametrize(
    "name, devices, task, message",
    [
        ("none", None, Task("worker", 1, 2), "unset TF_CONFIG"),
        ("mirrored", None, Task("worker", 0, 2), "--strategy multiworker"),
        ("multiworker", None, None, "needs TF_CONFIG"),
        ("multiworker", ["GPU:0"], Task("worker", 0, 2), "CUDA_VISIBLE_DEVICES"),
        ("none", ["GPU:0", "GPU:1"], None, "--strategy mirrored"),
        ("ring", None, None, "unknown strategy"),
    ],
)
def test_contradictory_strategy_requests_are_user_errors(name, devices, task, message):
    with pytest.raises(UserError, match=message):
        resolve_strategy(name, devices, task, gpus=0)


def test_global_batch_must_split_evenly_over_replicas():
    check_batch(4, 2)
    check_batch(3, 1)
    with pytest.raises(UserError, match="multiple of 2"):
        check_batch(3, 2)


def test_strategy_settings_are_validated_and_never_block_a_resume():
    cfg = RunConfig()
    cfg.train.strategy = "horovod"
    with pytest.raises(UserError, match="strategy"):
        cfg.validate()
    saved, requested = RunConfig(), RunConfig()
    saved.train.strategy, saved.train.devices, saved.train.jit_compile = "mirrored", ["GPU:0"], "on"
    requested.train.strategy, requested.train.jit_compile = "none", "off"
    assert config_differences(saved, requested) == []
    requested.train.scale_lr = True  # changes the recipe: the LR
    assert config_differences(saved, requested)


# --- what one process does: chief-only writing, datasets, LR, XLA -------------------


def test_chief_writes_the_run_and_workers_a_removed_copy(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints" / "backup").mkdir(parents=True)
    (run_dir / "checkpoints" / "backup" / "training_metadata.json").write_text('{"epoch": 3}')
    default = tf.distribute.get_strategy()
    chief = Distribution(default, "multiworker", Task("worker", 0, 2))
    with writable_dir(run_dir, chief, "checkpoints/backup") as out:
        assert out == run_dir
    worker = Distribution(default, "multiworker", Task("worker", 1, 2))
    with pytest.raises(RuntimeError), writable_dir(run_dir, worker, "checkpoints/backup") as out:
        assert out != run_dir and not out.is_relative_to(run_dir)
        # A restarted worker restores the same epoch as the chief.
        copy = out / "checkpoints" / "backup" / "training_metadata.json"
        assert json.loads(copy.read_text()) == {"epoch": 3}
        (out / "model.keras").write_text("worker output")
        raise RuntimeError("training failed")
    assert not out.exists()  # removed even when training fails
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints"]


def test_a_lost_worker_becomes_one_line_that_says_how_to_resume():
    default = tf.distribute.get_strategy()
    cluster = Distribution(default, "multiworker", Task("worker", 1, 2))
    lost = tf.errors.UnavailableError(None, None, "Collective ops is aborted by: task 0 died\nmore")
    message = r"^worker 1: .*task 0 died\); start every worker again"
    with pytest.raises(UserError, match=message), cluster_failures(cluster):
        raise lost
    with pytest.raises(tf.errors.UnavailableError), cluster_failures(Distribution(default, "none")):
        raise lost


def test_single_process_distribution_is_the_chief():
    dist = Distribution(tf.distribute.get_strategy(), "none")
    assert (dist.chief, dist.replicas, dist.workers) == (True, 1, 1)
    assert dist.summary() == {"strategy": "none", "replicas": 1, "workers": 1}
    dist.barrier()  # nothing to wait for


def test_training_data_is_sharded_by_element_and_validation_counted():
    ds = tf.data.Dataset.range(5).batch(2)
    assert (
        shard_by_data(ds).options().experimental_distribute.auto_shard_policy
        == tf.data.experimental.AutoShardPolicy.DATA
    )
    same, steps = every_replica(tf.distribute.get_strategy(), lambda: ds)
    assert steps == 3 and [b.numpy().tolist() for b in same] == [[0, 1], [2, 3], [4]]


def test_lr_is_scaled_only_when_asked_and_by_the_replicas_in_scope(monkeypatch):
    # This process has one device (a 2-device MirroredStrategy needs the CPU split
    # before TensorFlow starts; test_mirrored_replicas_stay_identical_and_match_one_device
    # does that in a fresh process and checks the scaled LR there), so here every
    # strategy has one replica and `== 1` alone cannot fail. Check that the factor is
    # the replica count of the strategy in scope, then against one reporting three.
    assert lr_factor(False) == 1
    assert lr_factor(True) == replicas_in_sync() == 1
    three = SimpleNamespace(num_replicas_in_sync=3)
    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: three)
    assert (lr_factor(True), lr_factor(False), replicas_in_sync()) == (3, 1, 3)


def test_xla_auto_is_off_on_cpu_and_on_refuses_cpu_replicas(monkeypatch):
    """Without a GPU (hidden here, so this holds on any machine): the CPU's choices."""
    listed = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [] if kind == "GPU" else listed(kind)
    )
    monkeypatch.delenv("TF_CONFIG", raising=False)
    measured = measured_cpu_precision()["precision"] if cpu_supports_bf16() else "float32"
    assert resolve_precision("auto") == measured
    assert make_distribution("auto").summary() == {"strategy": "none", "replicas": 1, "workers": 1}
    assert use_xla("auto") is False
    assert use_xla("on") is True
    assert use_xla("off") is False
    with pytest.raises(UserError, match="several replicas"):
        use_xla("on", replicas=2)
    with pytest.raises(UserError, match="mixed_bfloat16"):
        use_xla("on", policy="mixed_bfloat16")


def test_other_strategies_keep_keras_fit_untouched(tiny_config):
    cfg = tiny_config()
    cfg.model.in_channels = 1
    model = build_compiled_model(cfg)
    step = model.train_step
    fix_multiworker_fit(model)
    assert model.train_step == step and "_maybe_symbolic_build" not in vars(model)


# --- the GPU path, checked on CPU --------------------------------------------------


def test_mixed_float16_builds_a_loss_scaled_model_with_float32_output(tiny_config):
    """What ``--precision auto`` picks on a GPU: Keras wraps the optimizer itself."""
    cfg = tiny_config()
    cfg.model.in_channels = 1
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_compiled_model(cfg)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("enc1_conv1").compute_dtype == "float16"
    assert model.layers[-1].dtype_policy.name == "float32"
    x = np.random.default_rng(0).normal(100, 20, (2, 32, 32, 1)).astype(np.float32)
    y = (x > 100).astype(np.float32)
    assert model(x).dtype == "float32"
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])


# --- unet-tf info --------------------------------------------------------------------


def test_info_reports_versions_devices_and_resolved_choices(monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    report = environment_report()
    assert (report["tensorflow"], report["keras"]) == (tf.__version__, keras.__version__)
    assert "/device:CPU:0" in report["devices"] and report["gpus"] == []
    assert report["cpu_bf16"] == cpu_supports_bf16()
    if cpu_supports_bf16():  # measured: the faster of the two, with its timings
        assert report["precision"] == measured_cpu_precision()["precision"]
        assert report["precision_timing"]["float32_s"] > 0
        assert "s in bfloat16)" in format_report(report)
    else:
        assert (report["precision"], report["precision_timing"]) == ("float32", None)
    assert (report["strategy"], report["replicas"], report["jit_compile"]) == ("none", 1, False)
    assert environment_report(precision="float32")["precision"] == "float32"
    text = format_report(report)
    assert f"TensorFlow:        {tf.__version__}" in text and "TF_CONFIG:         unset" in text
    assert f"CPU:               {describe_cpu()}" in text

    monkeypatch.setenv("TF_CONFIG", tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1))
    assert main(["info", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["strategy"] == "multiworker" and shown["tf_config"] == "worker 1 of 2 task(s)"
    assert main(["info", "--strategy", "none"]) == 2
    assert "unset TF_CONFIG" in capsys.readouterr().err


# --- real strategies in fresh processes ----------------------------------------------


def run_cli(args: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "unet_tf.cli", *args],
        env=env or ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def two_devices() -> dict:
    """What distributed_helper.py, a process with the CPU split in two, found."""
    done = subprocess.run(
        [sys.executable, str(HERE / "distributed_helper.py")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.distributed
def test_mirrored_replicas_stay_identical_and_match_one_device(two_devices):
    """2 replicas x 2 images must train like 1 device x 4 images (BCE, synchronised BN)."""
    result = two_devices
    assert (result["replicas"], result["copies"]) == (2, 2)
    assert result["identical"], "replica copies of a variable diverged"
    assert result["max_weight_diff"] < 1e-4
    np.testing.assert_allclose(result["loss_mirrored"], result["loss_single"], rtol=1e-5)
    assert result["lr_mirrored"] == result["lr_single"] == pytest.approx(1e-3)
    assert result["lr_scaled"] == pytest.approx(2e-3)
    assert all(result["sync_bn_mirrored"]) and not any(result["sync_bn_single"])


@pytest.mark.distributed
def test_info_reports_both_devices_of_a_split_cpu(two_devices):
    report = two_devices["info"]
    assert report["strategy"] == "mirrored" and report["replicas"] == 2
    assert report["devices"] == ["/device:CPU:0", "/device:CPU:1"]


@pytest.mark.distributed
def test_cli_trains_mirrored_over_two_cpu_devices(tmp_path):
    data = write_folder_dataset(tmp_path / "data", n=5)
    run = tmp_path / "run"
    args = ["fit", "--data", str(data), *FIT, "--epochs", "2", "--run-dir", str(run)]
    done = run_cli([*args, "--strategy", "mirrored", "--devices", "CPU:0,CPU:1", "--scale-lr"], 180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "strategy mirrored, 2 replica(s)" in done.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["replicas"], metrics["workers"]) == ("mirrored", 2, 1)
    # The validation score of mirrored training is the saved model's own Dice on the
    # recorded validation image, recomputed here on one device.
    from unet_tf.api import evaluate
    from unet_tf.config import RunConfig

    (name,) = RunConfig.load(run / "config.yaml").data.val_names
    val = tmp_path / "val"
    for part in ("images", "masks"):
        (val / part).mkdir(parents=True)
        (val / part / f"{name}.png").write_bytes((data / part / f"{name}.png").read_bytes())
    recomputed = evaluate(run, val).mean()["dice"]
    assert metrics["validation"]["mean"]["dice"] == pytest.approx(recomputed, abs=1e-6)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([2e-3, 1.5e-3])
    assert keras.saving.load_model(run / "model.keras").count_params() > 0


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args: list[str], tmp_root: Path) -> list[subprocess.Popen]:
    """Both workers of a loopback cluster, each with its own TMPDIR to inspect."""
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        tmp = tmp_root / f"tmp{index}"
        tmp.mkdir(parents=True)
        env = {**ENV, "TF_CONFIG": tf_config(workers, index), "TMPDIR": str(tmp)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "unet_tf.cli", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def stop(procs: list[subprocess.Popen]) -> list[str]:
    """Kill what still runs (in this order); return each one's stderr."""
    errors = []
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        errors.append(proc.communicate()[1] or "")
    return errors


@pytest.mark.distributed
@pytest.mark.slow
def test_multiworker_resumes_after_a_worker_dies_and_only_the_chief_writes(tmp_path):
    """Two workers on 127.0.0.1; kill one after epoch 1, restart both: training resumes."""
    data = write_folder_dataset(tmp_path / "data", n=5)
    run = tmp_path / "run"
    args = ["fit", "--data", str(data), *FIT, "--epochs", "3", "--run-dir", str(run)]
    args += ["--strategy", "multiworker"]
    metadata = run / "checkpoints" / "backup" / "training_metadata.json"

    first = start_workers(args, tmp_path / "first")
    try:
        deadline = time.monotonic() + 150
        while not metadata.exists() and time.monotonic() < deadline:
            if any(p.poll() is not None for p in first):
                break
            time.sleep(0.1)
    finally:
        # The worker dies first; the chief would fail in its next all-reduce.
        errors = stop(first[::-1])
    assert metadata.exists(), "no epoch finished: " + errors[1][-2000:]
    resumed_from = json.loads(metadata.read_text())["epoch"]
    assert 1 <= resumed_from < 3

    second = start_workers(args, tmp_path / "second")
    try:
        outputs = [p.communicate(timeout=180) for p in second]
    finally:
        stop(second)
    (chief_out, chief_err), (worker_out, worker_err) = outputs
    assert [p.returncode for p in second] == [0, 0], chief_err[-2000:] + worker_err[-2000:]
    assert "resuming" in chief_out and "as worker 0" in chief_out
    assert "worker done; the chief writes the run" in worker_out
    epochs = [int(r["epoch"]) for r in csv.DictReader((run / "history.csv").open())]
    assert epochs[-(3 - resumed_from) :] == list(range(resumed_from + 1, 4))  # 1-based
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["replicas"], metrics["workers"]) == ("multiworker", 2, 2)
    assert (run / "model.keras").exists() and not metadata.exists()
    # The worker wrote only into its temporary directory, which it removed.
    assert list((tmp_path / "second" / "tmp1").iterdir()) == []
