"""Training step time of the scratch U-Net: base filters x input size x precision.

Usage: .venv/bin/python experiments/bench_train_step.py [--steps 6] [--out docs/bench_train_step.md]

Each configuration builds a fresh model in a fresh subprocess (the precision policy
is global), compiles it exactly as ``unet-tf fit`` does, runs two warm-up steps, then
times ``--steps`` steps of batch 4 on random data with ``train_on_batch``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
import unet_tf
from unet_tf.config import RunConfig
import keras
from unet_tf.runtime.precision import resolve_precision
from unet_tf.training.fit import build_compiled_model
base, size, precision, steps = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cfg = RunConfig()
cfg.model.base_filters, cfg.model.in_channels, cfg.data.size = base, 1, size
cfg.train.precision = resolve_precision(precision)
keras.mixed_precision.set_global_policy(cfg.train.precision)  # one model per child process
cfg.train.jit_compile = "off"
model = build_compiled_model(cfg)
rng = np.random.default_rng(0)
x = rng.random((4, size, size, 1), dtype=np.float32)
y = (rng.random((4, size, size, 1)) > 0.5).astype(np.float32)
for _ in range(2):
    model.train_on_batch(x, y)
times = []
for _ in range(steps):
    t = time.perf_counter(); model.train_on_batch(x, y); times.append(time.perf_counter() - t)
print(json.dumps({"median": float(np.median(times)), "min": float(np.min(times))}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for base in (16, 32, 64):
        for size in (128, 256):
            row = {"base": base, "size": size}
            for precision in ("float32", "mixed_bfloat16"):
                started = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(base), str(size), precision, str(args.steps)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row[precision] = json.loads(out.stdout.strip().splitlines()[-1])["median"]
                print(
                    base,
                    size,
                    precision,
                    f"{row[precision]:.3f} s/step",
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            rows.append(row)
    from unet_tf.runtime.cpu import describe_cpu  # the parent times nothing itself

    lines = [
        f"Machine: {describe_cpu()}; batch 4, depth 4, "
        f"median of {args.steps} train_on_batch steps after 2 warm-up steps, XLA off.",
        "",
        "| base filters | input | float32 s/step | mixed_bfloat16 s/step | bf16 speed-up |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['base']} | {r['size']}x{r['size']} | {r['float32']:.3f} | "
            f"{r['mixed_bfloat16']:.3f} | {r['float32'] / r['mixed_bfloat16']:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
