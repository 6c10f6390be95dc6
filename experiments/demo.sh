#!/usr/bin/env bash
# The README's demo: plan a recipe from the bundled ISBI 2012 sample, train it for as many
# steps as fit in 2 minutes on this machine, score it on two held-out slices at full
# resolution, and write masks and overlay panels.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
BIN=${BIN:-.venv/bin}
TEST=unet_tf/sample_data/isbi2012-test
start=$(date +%s)
"$BIN/unet-tf" fit --budget 2m --run-dir "$RUN"
"$BIN/unet-tf" evaluate "$RUN" --data "$TEST" --json "$RUN/test_scores.json"
"$BIN/unet-tf" predict "$RUN" "$TEST" --out "$RUN/predictions"
echo "demo finished in $(( $(date +%s) - start )) s; overlays in $RUN/predictions, TensorBoard: $BIN/tensorboard --logdir $RUN/logs"
