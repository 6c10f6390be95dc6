"""``unet-tf info``: what this machine offers and what ``fit`` would choose on it.

Bug reports and cluster set-ups start with the same questions: which TensorFlow,
which devices, does the CPU do bfloat16, which precision, XLA setting and strategy
``auto`` resolves to. The report answers them without training or joining a cluster.
"""

from __future__ import annotations

import platform
from typing import Any

import keras
import tensorflow as tf

from unet_tf import __version__
from unet_tf.runtime.cpu import cpu_supports_bf16, describe_cpu
from unet_tf.runtime.distribute import local_devices, read_tf_config, resolve_strategy
from unet_tf.runtime.precision import precision_choice
from unet_tf.runtime.xla import use_xla


def environment_report(
    strategy: str = "auto",
    devices: list[str] | None = None,
    precision: str = "auto",
    jit_compile: str = "auto",
) -> dict[str, Any]:
    """Versions, devices and the resolved settings, as plain data."""
    task = read_tf_config()
    gpus = tf.config.list_physical_devices("GPU")
    name = resolve_strategy(strategy, devices, task, len(gpus))
    chosen = local_devices(devices) if devices else None
    build = tf.sysconfig.get_build_info()
    policy, measured = precision_choice(precision)
    if name == "mirrored":
        replicas = len(chosen) if chosen else max(len(gpus), 1)
    elif name == "multiworker":
        replicas = max(len(gpus), 1)  # on this worker; the cluster has one set per worker
    else:
        replicas = 1
    return {
        "unet_tf": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "gpus": [
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        ],
        "cpu": describe_cpu(),
        "cpu_bf16": cpu_supports_bf16(),
        "precision": policy,
        "precision_timing": measured and {k: v for k, v in measured.items() if k != "precision"},
        "jit_compile": use_xla(jit_compile, replicas, policy),
        "strategy": name,
        "replicas": replicas,
        "tf_config": None
        if task is None
        else f"{task} of {task.workers} task(s)" + (" (chief)" if task.chief else ""),
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned ``key: value`` lines."""
    cuda = f"CUDA {report['cuda']}, cuDNN {report['cudnn']}" if report["cuda_build"] else "no"
    rows = [
        ("unet-tf", report["unet_tf"]),
        ("Python", report["python"]),
        ("TensorFlow", report["tensorflow"]),
        ("Keras", report["keras"]),
        ("CUDA build", cuda),
        ("devices", ", ".join(report["devices"])),
        ("GPUs", ", ".join(report["gpus"]) or "none"),
        ("CPU", report["cpu"]),
        ("CPU bfloat16", "yes" if report["cpu_bf16"] else "no"),
        ("precision", report["precision"] + _timing(report["precision_timing"])),
        ("XLA (jit_compile)", "on" if report["jit_compile"] else "off"),
        ("strategy", f"{report['strategy']} ({report['replicas']} replica(s) on this machine)"),
        ("TF_CONFIG", report["tf_config"] or "unset"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in rows)


def _timing(timing: dict | None) -> str:
    if not timing:
        return ""
    return (
        f" (measured here: a small conv step takes {timing['float32_s']:.3f} s in float32, "
        f"{timing['bfloat16_s']:.3f} s in bfloat16)"
    )
