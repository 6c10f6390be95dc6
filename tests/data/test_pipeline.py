"""The tf.data pipeline's effect on the process it runs in."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from unet_tf.config import RunConfig
    from unet_tf.data.pipeline import make_dataset, prepare
    from unet_tf.data.sample import Sample

    rng = np.random.default_rng(0)
    samples = [
        Sample(f"s{i}", rng.integers(0, 255, (40 + 8 * i, 48, 1), np.uint8),
               mask=(rng.random((40 + 8 * i, 48)) > 0.5).astype(np.uint8))
        for i in range(3)
    ]
    cfg = RunConfig.from_dict({"data": {"patch": 32}, "train": {"batch_size": 2}})
    items = prepare(samples, cfg, None)
    x, y = next(iter(make_dataset(items, cfg, training=True)))
    assert x.shape == (2, 32, 32, 1) and y.shape == (2, 32, 32, 1)
    shapes = [tuple(x.shape) for x, _ in make_dataset(items, cfg, training=False)]
    assert shapes == [(1, 40, 48, 1), (1, 48, 48, 1), (1, 56, 48, 1)], shapes
    print("read")
    """
)


def test_reading_batches_leaves_the_allocator_alone():
    """TensorFlow's ``Dataset.from_generator`` kernel sets glibc's trim threshold for the
    whole process (and logs it), after which each training step faulted its memory in
    again: 1.6x slower on DRIVE. The pipeline must not run that kernel; a fresh process
    shows TensorFlow's log, which the package otherwise silences."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0 and "read" in done.stdout, done.stderr[-3000:]
    assert "M_TRIM_THRESHOLD" not in done.stderr
