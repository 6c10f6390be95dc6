"""Precision ``auto`` on a CPU: bfloat16 only where it is measured to be faster."""

from __future__ import annotations

import json

import keras
import pytest

from unet_tf.runtime import cpu, precision
from unet_tf.runtime.precision import (
    PRECISION_CACHE,
    machine_key,
    measured_cpu_precision,
    precision_choice,
    resolve_precision,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty measurement cache, and no answer remembered from earlier calls."""
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path))
    measured_cpu_precision.cache_clear()
    yield tmp_path / PRECISION_CACHE
    measured_cpu_precision.cache_clear()


def test_the_measurement_is_timed_once_kept_and_read_back(cache, monkeypatch):
    # A real timing of one step per policy: bfloat16 is emulated on CPUs without it
    # (1.5 s a step on an AVX2-only EPYC), and the cache's handling needs no more.
    real = precision.time_step
    monkeypatch.setattr(precision, "time_step", lambda policy: real(policy, steps=1))
    keras.mixed_precision.set_global_policy("float32")
    result = measured_cpu_precision()
    assert keras.mixed_precision.global_policy().name == "float32"  # the caller's, restored
    assert result["float32_s"] > 0 and result["bfloat16_s"] > 0
    faster = result["bfloat16_s"] <= precision.BF16_GAIN * result["float32_s"]
    assert result["precision"] == ("mixed_bfloat16" if faster else "float32")
    assert json.loads(cache.read_text()) == {machine_key(): result}
    # a kept answer is used as it is: this one could not come from timing
    kept = {"precision": "mixed_bfloat16", "float32_s": 1.0, "bfloat16_s": 2.0}
    cache.write_text(json.dumps({machine_key(): kept, "another-machine": result}))
    measured_cpu_precision.cache_clear()
    assert measured_cpu_precision() == kept


def test_a_damaged_cache_is_measured_again_keeping_other_machines(cache, monkeypatch):
    """The cache's handling, with timings set by hand (the real timing is tested above)."""
    timed = []
    seconds = {"float32": 0.30, "mixed_bfloat16": 0.20}
    monkeypatch.setattr(
        precision, "time_step", lambda policy: timed.append(policy) or seconds[policy]
    )
    cache.write_text("{ not json")
    assert measured_cpu_precision() == {
        "precision": "mixed_bfloat16", "float32_s": 0.3, "bfloat16_s": 0.2
    }  # fmt: skip
    assert timed == ["float32", "mixed_bfloat16"]
    assert list(json.loads(cache.read_text())) == [machine_key()]
    other = {"precision": "float32", "float32_s": 1.0, "bfloat16_s": 1.0}
    cache.write_text(json.dumps({"another-machine": other, machine_key(): {"precision": "fp8"}}))
    measured_cpu_precision.cache_clear()
    seconds["mixed_bfloat16"] = 0.29  # within BF16_GAIN of float32: not worth it
    result = measured_cpu_precision()  # an unknown precision is not trusted
    assert timed == ["float32", "mixed_bfloat16"] * 2
    assert result == {"precision": "float32", "float32_s": 0.3, "bfloat16_s": 0.29}
    assert json.loads(cache.read_text()) == {"another-machine": other, machine_key(): result}


def test_a_named_precision_is_never_measured(cache):
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert resolve_precision("float32") == "float32"
    assert precision_choice("float32") == ("float32", None)
    assert not cache.exists()


def test_auto_names_the_timing_that_chose_it_only_when_one_did(cache):
    policy, measured = precision_choice("auto")
    assert policy == resolve_precision("auto")
    if cpu.cpu_supports_bf16():
        assert measured == measured_cpu_precision() and measured["precision"] == policy
    else:
        assert (policy, measured, cache.exists()) == ("float32", None, False)


@pytest.mark.parametrize(
    ("flags", "vector"),
    [
        ("fpu avx2 avx512f avx512_bf16", "AVX-512 with bfloat16"),
        ("fpu avx2 avx512f", "AVX-512, no bfloat16"),
        ("fpu avx avx2 fma", "AVX2, no AVX-512"),
        ("fpu sse4_2", "no AVX2"),
    ],
)
def test_the_cpu_is_described_by_its_vector_instructions(monkeypatch, flags, vector):
    """Two machines both named "AMD EPYC" differ in what they can do; the description says."""
    fields = {"model name": "AMD EPYC", "flags": flags}
    monkeypatch.setattr(cpu, "_cpuinfo", lambda field: fields.get(field, ""))
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    assert cpu.describe_cpu() == f"AMD EPYC, 2 logical cores, {vector}"
