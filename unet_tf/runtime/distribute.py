"""Training on several devices or machines with TensorFlow's own ``tf.distribute``.

This module only translates the user's words (``--strategy``, ``--devices`` and the
standard ``TF_CONFIG`` variable) into a strategy, and answers what the training
loop must know about it: how many replicas there are and whether this process may
write the run directory.

- ``none``: one device (TensorFlow's default strategy, or one ``--devices`` entry).
- ``mirrored``: ``MirroredStrategy`` over all visible GPUs or the ``--devices``;
  each replica takes ``batch_size / replicas`` images and gradients are all-reduced.
- ``multiworker``: ``MultiWorkerMirroredStrategy`` over the machines in ``TF_CONFIG``.
  Every worker runs the same command; only the chief writes the run directory,
  the others write into temporary directories that are removed afterwards.
- ``auto``: multiworker when ``TF_CONFIG`` names several tasks, mirrored when several
  devices are given or several GPUs are visible, else none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from unet_tf.atomic import TMP_PREFIX
from unet_tf.config import STRATEGIES
from unet_tf.errors import UserError, first_line

TASK_TYPES = ("chief", "worker")
DOCS = "see docs/distributed.md"


@dataclass(frozen=True)
class Task:
    """This process's place in the cluster that ``TF_CONFIG`` describes."""

    type: str
    index: int
    workers: int  # chief and worker tasks in the cluster
    solo: bool = True  # no separate "chief" task: worker 0 leads

    @property
    def chief(self) -> bool:
        """The chief writes the run: the ``chief`` task, or worker 0 when there is none."""
        return self.type == "chief" or (self.type == "worker" and self.index == 0 and self.solo)

    def __str__(self) -> str:
        return f"{self.type} {self.index}"


def read_tf_config(raw: str | None = None) -> Task | None:
    """Parse ``TF_CONFIG`` (default: the environment); None when it is unset or empty."""
    raw = os.environ.get("TF_CONFIG", "") if raw is None else raw
    if not raw.strip():
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON ({exc.msg}); {DOCS}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError(f'TF_CONFIG needs a "cluster" and a "task" mapping; {DOCS}')
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise UserError(
            f"TF_CONFIG names task type(s) {', '.join(unknown)}; unet-tf trains with chief "
            f"and worker tasks only (no parameter servers or evaluator); {DOCS}"
        )
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise UserError(f'TF_CONFIG cluster "{kind}" must be a list of "host:port" strings')
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise UserError(
            f"TF_CONFIG task {kind!r} {index!r} is not in its cluster; set "
            f'"task": {{"type": "worker", "index": i}} with i below the number of workers'
        )
    workers = sum(len(cluster.get(t, [])) for t in TASK_TYPES)
    return Task(kind, index, workers, solo="chief" not in cluster)


def parse_device(name: str) -> str:
    """``GPU:1``, ``gpu:1``, ``/gpu:1``, ``/device:GPU:1`` or ``1`` -> ``/device:GPU:1``."""
    text = name.strip().lstrip("/")
    if text.lower().startswith("device:"):
        text = text[len("device:") :]
    kind, _, index = text.rpartition(":")
    kind = (kind or "GPU").upper()
    if kind not in ("CPU", "GPU") or not index.isdigit():
        raise UserError(f"--devices: cannot read {name!r}; write devices as GPU:0,GPU:1")
    return f"/device:{kind}:{int(index)}"


def resolve_strategy(name: str, devices: list[str] | None, task: Task | None, gpus: int) -> str:
    """The strategy ``name`` stands for on this machine (``auto`` resolved)."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    clustered = task is not None and task.workers > 1
    if name == "auto":
        if clustered:
            return "multiworker"
        return "mirrored" if len(devices or []) > 1 or gpus > 1 else "none"
    if clustered and name != "multiworker":
        raise UserError(
            f"TF_CONFIG describes a {task.workers}-task cluster, but --strategy {name} trains "
            "on this machine alone; use --strategy multiworker (or auto), or unset TF_CONFIG"
        )
    if name == "multiworker" and task is None:
        raise UserError(f"--strategy multiworker needs TF_CONFIG to describe the cluster; {DOCS}")
    if devices and name == "multiworker":
        raise UserError(
            "--devices does not apply to --strategy multiworker: each machine uses all of its "
            "visible GPUs (choose them with CUDA_VISIBLE_DEVICES)"
        )
    if devices and len(devices) > 1 and name == "none":
        raise UserError("--strategy none trains on one device; use --strategy mirrored")
    return name


def split_cpu(count: int) -> None:
    """Expose the CPU as ``count`` logical devices, so mirrored training runs without GPUs.

    This is how the mirrored path is tested on CPU-only machines. It only works before
    TensorFlow has initialised its devices, so the CLI does it first thing.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu) or []
    if len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        raise UserError(
            f"--devices needs the CPU split into {count} logical devices, which must happen "
            "before TensorFlow starts; run unet-tf fit in a new process"
        ) from None


def local_devices(devices: list[str]) -> list[str]:
    """Normalise ``--devices`` and check that each one exists on this machine."""
    wanted = [parse_device(d) for d in devices]
    if len(set(wanted)) < len(wanted):
        raise UserError(f"--devices lists a device twice: {','.join(devices)}")
    if len({d.split(":")[1] for d in wanted}) > 1:
        raise UserError("--devices mixes CPU and GPU devices; use one kind")
    cpus = [int(d.rsplit(":", 1)[1]) for d in wanted if ":CPU:" in d]
    if cpus and max(cpus) > 0:
        split_cpu(max(cpus) + 1)
    visible = {d.name for d in tf.config.list_logical_devices()}
    missing = [d for d in wanted if d not in visible]
    if missing:
        raise UserError(
            f"--devices: {', '.join(missing)} not visible; this machine has "
            f"{', '.join(sorted(visible))}"
        )
    return wanted


@dataclass
class Distribution:
    """A live strategy, plus what the training loop asks of it."""

    strategy: tf.distribute.Strategy
    name: str
    task: Task | None = None

    @property
    def chief(self) -> bool:
        """May this process write the run directory?"""
        return self.name != "multiworker" or self.task is None or self.task.chief

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def workers(self) -> int:
        return self.task.workers if self.name == "multiworker" and self.task else 1

    def barrier(self) -> None:
        """Wait until every worker gets here (an all-reduce of zeros); no-op on one machine."""
        if self.workers > 1:
            zeros = self.strategy.run(lambda: tf.zeros(()))
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, zeros, axis=None)

    def summary(self) -> dict[str, str | int]:
        """What ran, for ``metrics.json``."""
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers}

    def describe(self) -> str:
        where = f" as {self.task}" if self.name == "multiworker" and self.task else ""
        return f"strategy {self.name}, {self.replicas} replica(s){where}"


def make_distribution(name: str, devices: list[str] | None = None) -> Distribution:
    """Create the strategy ``name`` on ``devices``; call it before TensorFlow starts.

    Creating a ``MultiWorkerMirroredStrategy`` waits until every worker in
    ``TF_CONFIG`` has started.
    """
    task = read_tf_config()
    resolved = resolve_strategy(name, devices, task, len(tf.config.list_physical_devices("GPU")))
    if resolved == "multiworker":
        return Distribution(tf.distribute.MultiWorkerMirroredStrategy(), resolved, task)
    chosen = local_devices(devices) if devices else None
    if resolved == "mirrored":
        return Distribution(tf.distribute.MirroredStrategy(chosen), resolved)
    if chosen:
        return Distribution(tf.distribute.OneDeviceStrategy(chosen[0]), resolved)
    return Distribution(tf.distribute.get_strategy(), resolved)


def check_batch(batch_size: int, replicas: int) -> None:
    """The global batch must split evenly, or replicas would see different batch sizes."""
    if batch_size % replicas:
        raise UserError(
            f"--batch-size {batch_size} is the global batch and must split evenly over "
            f"{replicas} replicas; use a multiple of {replicas}"
        )


def replicas_in_sync() -> int:
    """Replicas of the strategy in scope (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def lr_factor(scale_lr: bool) -> int:
    """The linear scaling rule (Goyal et al. 2017): with ``--scale-lr``, LR x replicas.

    It reads the strategy in scope, so call it where the model is compiled.
    """
    return replicas_in_sync() if scale_lr else 1


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by elements: every worker reads all images and keeps its share.

    The pipeline is built from in-memory samples, so there are no files to shard
    by; the default AUTO policy would try FILE first and warn.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def every_replica(
    strategy: tf.distribute.Strategy, make: Callable[[], tf.data.Dataset]
) -> tuple[tf.data.Dataset | tf.distribute.DistributedDataset, int]:
    """Give every replica every batch of a (validation) dataset; also return its batches.

    Keras would split each batch across the replicas, which fails when a batch holds
    fewer images than there are replicas: small validation sets, or full-size images
    scored one at a time. Validation sets are small, so each replica scores all of
    it instead. The counts behind Dice and the loss average are then summed over
    replicas, each N times, which leaves every score unchanged. The number of batches
    is returned because Keras cannot count those of a distributed dataset.
    """
    dataset = make()
    steps = int(dataset.cardinality())
    if strategy.num_replicas_in_sync == 1:
        return dataset, steps

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        copies = context.num_replicas_in_sync // context.num_input_pipelines
        # Consecutive batches go to consecutive replicas: repeat each one per replica.
        # Endless, as Keras keeps one iterator over all epochs and takes ``steps`` each.
        copied = make().flat_map(lambda *batch: tf.data.Dataset.from_tensors(batch).repeat(copies))
        return copied.repeat()

    return strategy.distribute_datasets_from_function(per_worker), steps


@contextlib.contextmanager
def cluster_failures(dist: Distribution) -> Iterator[None]:
    """Turn a lost worker into one line that says how to resume.

    When a worker dies, the others fail in their next collective op. Nothing is
    wrong with the run: restarting every worker resumes it from its last epoch.
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as exc:
        if dist.workers == 1:
            raise
        raise UserError(
            f"{dist.task}: the cluster lost a worker ({first_line(exc.message or exc, 160)}); "
            "start every worker "
            "again with the same command to resume from the last finished epoch"
        ) from None


@contextlib.contextmanager
def writable_dir(run_dir: Path, dist: Distribution, backup: str) -> Iterator[Path]:
    """Where this process writes: the run directory on the chief, a temporary one elsewhere.

    Workers run the same callbacks as the chief (their collective ops must match), but
    their files go to a directory that is removed afterwards. A worker starts from a
    copy of the chief's ``backup`` folder so that, after a restart, every worker
    restores the same epoch. That needs the run directory on storage all workers see.
    """
    if dist.chief:
        yield run_dir
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"unet-tf-{dist.task.type}{dist.task.index}-"))
    try:
        if (run_dir / backup).is_dir():
            # a killed chief's temporaries may vanish while we copy; they hold nothing
            shutil.copytree(
                run_dir / backup, tmp / backup, ignore=shutil.ignore_patterns(f"{TMP_PREFIX}*")
            )
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
