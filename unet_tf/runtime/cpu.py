"""What the CPU is: its model, cores and vector instructions, read from /proc/cpuinfo.

Standard library only, so the experiment drivers, which launch ``unet-tf`` processes
and write tables, can name the machine without loading TensorFlow (they load this file
by path, as they load ``unet_tf/atomic.py``).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo(field: str) -> str:
    """The first ``field`` line of /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(field)), "")


def cpu_flags() -> list[str]:
    """The CPU's feature flags."""
    return _cpuinfo("flags").split()


def cpu_supports_bf16(flags: list[str] | None = None) -> bool:
    """True when the CPU (or the given feature ``flags``) has native bfloat16 instructions."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def cpu_model() -> str:
    """The CPU's model name, or what the platform says where /proc/cpuinfo is absent."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown CPU"


def describe_cpu() -> str:
    """Model, logical cores and vector instructions: what a CPU measurement depends on.

    The model name alone does not say it: "AMD EPYC" has named 2-core machines here with
    AVX-512 BF16 (Zen 4) and with AVX2 only (Zen 3), which train a U-Net at different
    speeds and in different precisions, so benchmark and budget tables name the set.
    """
    flags = cpu_flags()
    if cpu_supports_bf16(flags):
        vector = "AVX-512 with bfloat16"
    elif "avx512f" in flags:
        vector = "AVX-512, no bfloat16"
    elif "avx2" in flags:
        vector = "AVX2, no AVX-512"
    else:
        vector = "no AVX2" if flags else "vector instructions unknown"
    return f"{cpu_model()}, {os.cpu_count()} logical cores, {vector}"
