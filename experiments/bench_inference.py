"""Tiled inference throughput: scratch U-Net and VGG16 U-Net, tile batch, precision.

Usage:
  .venv/bin/python experiments/bench_inference.py [--side 1024] [--out FILE.md]
  .venv/bin/python experiments/bench_inference.py --big 10000 --models scratch

Each (model, precision) runs in a fresh subprocess (the precision policy is global).
The model has random weights (speed does not depend on them): the scratch U-Net with
base 32 filters and depth 4, and the VGG16 U-Net (``--backbone vgg16``, encoder
weights none). A random RGB image of ``--side`` x ``--side`` px is predicted with
``Predictor.predict`` exactly as ``unet-tf predict --tile 256 --overlap 0.25`` does,
once to warm up (graph tracing) and then timed; megapixels/s counts image pixels,
so the overlap's extra work is included. ``--big`` times one image of that side
instead and reports the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from unet_tf.config import RunConfig
from unet_tf.inference.predictor import InferenceOptions, Predictor
from unet_tf.models import build_model
import keras
from unet_tf.runtime.precision import resolve_precision

backbone, precision, side, tile, batches, repeats = sys.argv[1:7]
side, tile, repeats = int(side), int(tile), int(repeats)
cfg = RunConfig()
cfg.model.backbone, cfg.model.encoder_weights = backbone, "none"
cfg.model.in_channels, cfg.model.base_filters, cfg.data.patch = 3, 32, tile
keras.mixed_precision.set_global_policy(resolve_precision(precision))  # one model per child
model = build_model(cfg.model, tile)
image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
out = {"parameters": model.count_params()}
for batch in map(int, batches.split(",")):
    predictor = Predictor(model, cfg, InferenceOptions(tile=tile, overlap=0.25, tile_batch=batch))
    predictor.predict(image[: min(side, 2 * tile), : min(side, 2 * tile)])  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        probs = predictor.predict(image)
        times.append(time.perf_counter() - started)
    assert probs.shape == (side, side, 1)
    out[batch] = {"seconds": min(times), "mp_per_s": side * side / 1e6 / min(times)}
out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""

MODELS = {"scratch": "none", "vgg16": "vgg16"}
NAMES = {"scratch": "scratch U-Net (base 32, depth 4)", "vgg16": "VGG16 U-Net"}


def run_child(backbone: str, precision: str, args: argparse.Namespace, batches: str) -> dict:
    command = [sys.executable, "-c", CHILD, backbone, precision, str(args.side), str(args.tile)]
    command += [batches, str(args.repeats)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{backbone} {precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024, help="image side in px [1024]")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batches", default="1,4,8", help="tile batch sizes [1,4,8]")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default="scratch,vgg16")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--big", type=int, help="time one image of this side instead")
    parser.add_argument("--out", help="also write the Markdown table here")
    args = parser.parse_args()
    if args.big:
        args.side, args.repeats, args.batches = args.big, 1, args.batches.split(",")[-1]
    batches = [int(b) for b in args.batches.split(",")]
    lines = [
        f"{args.side}x{args.side} px RGB image, {args.tile} px tiles, overlap 0.25, Gaussian "
        f"blend; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        "megapixels of image per second (best of "
        f"{args.repeats}).",
        "",
        "| model | parameters | precision | "
        + " | ".join(f"tile batch {b}" for b in batches)
        + " | peak memory |",
        "|---|---:|---|" + "---:|" * len(batches) + "---:|",
    ]
    for name in args.models.split(","):
        for precision in args.precisions.split(","):
            result = run_child(MODELS[name], precision, args, args.batches)
            cells = [
                f"{result[str(b)]['mp_per_s']:.3f} MP/s ({result[str(b)]['seconds']:.1f} s)"
                for b in batches
            ]
            row = f"| {NAMES[name]} | {result['parameters']:,} | {precision} | "
            lines.append(row + " | ".join(cells) + f" | {result['peak_rss_gib']:.1f} GiB |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
