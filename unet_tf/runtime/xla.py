"""Whether to compile the training step with XLA (Keras ``jit_compile``).

``auto`` turns XLA on for GPUs, where fusing BatchNorm, ReLU and the elementwise
loss terms saves memory traffic, and off on CPUs, where it was measured 1.4x slower
in float32 (``experiments/bench_jit.py``; numbers in docs/distributed.md). On CPUs,
TensorFlow 2.21's XLA also fails outright on ``mixed_bfloat16`` models and cannot
compile the collective ops that several replicas need, so ``on`` is refused there.
"""

from __future__ import annotations

from unet_tf.errors import UserError
from unet_tf.runtime.precision import gpu_available


def use_xla(setting: str, replicas: int = 1, policy: str = "float32") -> bool:
    """Map ``--jit-compile auto|on|off`` to Keras's ``jit_compile`` flag."""
    gpu = gpu_available()
    if setting == "auto":
        return gpu
    if setting == "on" and not gpu:
        if replicas > 1:
            raise UserError(
                "--jit-compile on cannot train several replicas on CPUs (XLA has no CPU "
                "collective ops); use --jit-compile auto or off"
            )
        if policy == "mixed_bfloat16":
            raise UserError(
                "--jit-compile on fails for mixed_bfloat16 on CPUs (an XLA limitation); "
                "use --jit-compile off, or --precision float32"
            )
    return setting == "on"
