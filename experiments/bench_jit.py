"""CPU training step time with XLA (``--jit-compile``) on and off, in float32 and bf16.

Usage (heavy: take the shared lock):
    flock /tmp/unet-heavy.lock .venv/bin/python experiments/bench_jit.py [--steps 10] [--rounds 2]

The scratch U-Net (base 16, depth 4) at 128 x 128, batch 4, compiled exactly as
``unet-tf fit`` compiles it. Each configuration runs in a fresh subprocess (the
precision policy is global); the first step (tracing, and XLA compilation) is
timed on its own, then ``--steps`` ``train_on_batch`` steps. Rounds alternate the
order of the configurations so that a busy machine does not favour one of them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import unet_tf
from unet_tf.config import RunConfig
import keras
from unet_tf.runtime.precision import resolve_precision
from unet_tf.training.fit import build_compiled_model
precision, jit, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = RunConfig()
cfg.model.base_filters, cfg.model.in_channels, cfg.data.size = 16, 1, 128
cfg.train.precision = resolve_precision(precision)
keras.mixed_precision.set_global_policy(cfg.train.precision)  # one model per child process
cfg.train.jit_compile = jit
model = build_compiled_model(cfg)
rng = np.random.default_rng(0)
x = rng.random((4, 128, 128, 1), dtype=np.float32)
y = (rng.random((4, 128, 128, 1)) > 0.5).astype(np.float32)
t = time.perf_counter(); model.train_on_batch(x, y); first = time.perf_counter() - t
model.train_on_batch(x, y)
times = []
for _ in range(steps):
    t = time.perf_counter(); model.train_on_batch(x, y); times.append(time.perf_counter() - t)
result = {"first": first, "median": float(np.median(times)), "jit": bool(model.jit_compile)}
print(json.dumps(result))
"""

CONFIGS = [(p, j) for p in ("float32", "mixed_bfloat16") for j in ("off", "on")]


def run(precision: str, jit: str, steps: int) -> dict:
    """One configuration's timings, or the error it ends with."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, precision, jit, str(steps)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        errors = [line for line in out.stderr.splitlines() if "Error" in line]
        return {"error": (errors or [f"exit code {out.returncode}"])[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in CONFIGS}
    for r in range(args.rounds):
        for precision, jit in CONFIGS if r % 2 == 0 else CONFIGS[::-1]:
            result = run(precision, jit, args.steps)
            assert "error" in result or result["jit"] == (jit == "on"), result
            results[(precision, jit)].append(result)
            print(precision, f"XLA {jit}:", json.dumps(result), flush=True)
    print("\n| precision | XLA | first step (s) | median step (s) |")
    print("|---|---|---:|---:|")
    for (precision, jit), runs in results.items():
        timed = [r for r in runs if "error" not in r]
        if not timed:
            print(f"| {precision} | {jit} | fails | {runs[0]['error'][:80]} |")
            continue
        first = min(r["first"] for r in timed)
        median = min(r["median"] for r in timed)
        print(f"| {precision} | {jit} | {first:.1f} | {median:.3f} |")


if __name__ == "__main__":
    main()
