#!/usr/bin/env bash
# Issue 2 acceptance run: the scratch U-Net on the full ISBI 2012 set in ../shared
# (20 slices, 16 train / 4 validation by the seeded split), then evaluate, predict and
# export on the finished run.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/isbi2012-em}
RUN=${1:-runs/isbi2012-$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-.venv/bin}
"$BIN/unet-tf" fit --data "$DATA" --size 256 --base-filters 16 --epochs 20 --steps-per-epoch 10 \
  --run-dir "$RUN" --quiet
"$BIN/unet-tf" evaluate "$RUN" --data "$DATA" --json "$RUN/all_scores.json" | tail -4
"$BIN/unet-tf" predict "$RUN" "$DATA/image/3.png" --out "$RUN/predictions"
"$BIN/unet-tf" export "$RUN" --out "$RUN/savedmodel"
"$BIN/unet-tf" evaluate "$RUN/savedmodel" --data "$DATA" | tail -3
