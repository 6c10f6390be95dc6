"""What every file format shares: the float32 copy of a mixed-precision model."""

from __future__ import annotations

import numpy as np
from export_tester import bf16_unet

from unet_tf.export.common import float32_copy


def test_float32_copy_keeps_weights_and_drops_bfloat16():
    model = bf16_unet()
    copy = float32_copy(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    x = np.random.default_rng(0).random((1, 64, 64, 1)).astype(np.float32) * 255
    assert 0 < np.abs(copy(x).numpy() - model(x).numpy()).max() < 2e-2
    assert float32_copy(copy) is copy
