"""Choosing the numeric precision for the hardware at hand.

GPUs want ``mixed_float16``; CPUs emulate fp16 (about 5x slower). Whether bfloat16 pays
on a CPU depends on more than its flags, so ``auto`` measures it, once per machine:

- A 2-core AMD EPYC with AVX512-BF16 trained U-Nets 1.2-1.9x faster in
  ``mixed_bfloat16``.
- A 2-core Intel Xeon with the same flags but no AMX trained them 1.4-1.7x faster in
  float32: scratch, VGG16 and ResNet50 U-Nets, 96-256 px inputs (docs/benchmarks.md).

:func:`measured_cpu_precision` times a few training steps of a small conv-BN-ReLU
network in both (a few seconds) and keeps the answer in the user's cache, keyed by
the CPU and the TensorFlow version. Models keep their final activation in float32.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.atomic import atomic_write_text
from unet_tf.runtime.cpu import cpu_flags, cpu_model, cpu_supports_bf16

BF16_GAIN = 0.9  # bfloat16 is chosen only if a step takes at most this share of float32's
CACHE_ENV = "UNET_TF_CACHE"  # where measurements are kept [~/.cache/unet-tf]
PRECISION_CACHE = "precision.json"


def gpu_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_precision(name: str) -> str:
    """Map ``auto`` to fp16 on GPU; on a bfloat16 CPU, the faster one measured here."""
    return precision_choice(name)[0]


def precision_choice(name: str) -> tuple[str, dict | None]:
    """The policy ``name`` resolves to, and the timing that chose it (None if none did).

    Only ``auto`` on a CPU with bfloat16 instructions and no GPU is decided by a
    measurement; ``unet-tf info`` shows it, so the rule lives here once.
    """
    if name != "auto":
        return name, None
    if gpu_available():
        return "mixed_float16", None
    if not cpu_supports_bf16():
        return "float32", None
    measured = measured_cpu_precision()
    return measured["precision"], measured


def cache_dir() -> Path:
    """The folder of unet-tf's per-machine measurements."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "unet-tf"


def machine_key() -> str:
    """What the measurement depends on: the CPU, its cores and the TensorFlow build."""
    parts = [cpu_model(), str(os.cpu_count()), tf.__version__, *sorted(cpu_flags())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@functools.cache
def measured_cpu_precision() -> dict:
    """``{"precision", "float32_s", "bfloat16_s"}`` for this CPU: cached, else timed now.

    A cache file that cannot be read or belongs to another machine is measured again
    and rewritten (atomically; it is unet-tf's own file).
    """
    path = cache_dir() / PRECISION_CACHE
    key = machine_key()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    cached = known.get(key)
    if isinstance(cached, dict) and cached.get("precision") in ("float32", "mixed_bfloat16"):
        return cached
    float32_s, bfloat16_s = time_step("float32"), time_step("mixed_bfloat16")
    faster = bfloat16_s <= BF16_GAIN * float32_s
    result = {
        "precision": "mixed_bfloat16" if faster else "float32",
        "float32_s": round(float32_s, 4),
        "bfloat16_s": round(bfloat16_s, 4),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({**known, key: result}, indent=2))
    except OSError:  # a read-only home: measure again next time
        pass
    return result


def time_step(policy: str, steps: int = 5) -> float:
    """Median seconds of a training step of a small conv-BN-ReLU network in ``policy``.

    Three 3x3 convolutions with batch norm on 4 x 128^2 images: the operations a U-Net
    spends its time in, small enough to time in about a second per policy.
    """
    with precision_policy(policy):
        inputs = keras.Input((128, 128, 1))
        x = inputs
        for filters in (32, 32, 64):
            x = keras.layers.Conv2D(filters, 3, padding="same")(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        model = keras.Model(inputs, keras.layers.Conv2D(1, 1, dtype="float32")(x))
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)  # else the first step traces twice
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((4, 128, 128, 1), np.float32))
    targets = tf.constant(rng.random((4, 128, 128, 1), np.float32))

    @tf.function
    def step() -> None:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(images, training=True) - targets) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    step()  # traced, not timed
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[str]:
    """Build and train under the Keras dtype policy ``name`` names, then restore the old one.

    Keras reads the global policy when a layer is created, so it must be set around
    model building; restoring it keeps a notebook's later models in their own precision.
    """
    previous = keras.mixed_precision.global_policy()
    policy = resolve_precision(name)
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)
