"""Mirrored training on two logical CPU devices, run in a fresh process by test_distribute.

The CPU must be split into logical devices before TensorFlow initialises, which a
pytest process that already ran TensorFlow cannot do, hence this script. It trains
the real U-Net (compiled as ``unet-tf fit`` compiles it) for a few steps twice from
the same weights: once mirrored over CPU:0 and CPU:1, once on one device, both at
global batch 4. It also runs ``unet-tf info`` on both devices in this process (a
mirrored ``unet-tf fit`` cannot join them: TensorFlow's collective ops keep state from
the training above). It prints what the tests check as JSON.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from unet_tf.cli import main as cli  # noqa: E402
from unet_tf.config import RunConfig  # noqa: E402
from unet_tf.models import build_model  # noqa: E402
from unet_tf.training.fit import compile_model  # noqa: E402


def tiny_config(scale_lr: bool = False) -> RunConfig:
    cfg = RunConfig()
    cfg.model.base_filters, cfg.model.depth, cfg.model.in_channels = 4, 2, 1
    cfg.train.loss = "bce"  # a mean over pixels: splits exactly over replicas (batch Dice not)
    cfg.train.precision = "float32"
    cfg.train.scale_lr = scale_lr
    return cfg


def train(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[float, list[float]]:
    """Compile as fit does (in the model's strategy); return the LR and per-epoch losses."""
    compile_model(model, tiny_config())
    lr = float(model.optimizer.learning_rate.numpy())
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    return lr, history.history["loss"]


def batchnorm_synchronized(model: keras.Model) -> list[bool]:
    return [layer.synchronized for layer in model.layers if "_bn" in layer.name]


def info_report() -> dict:
    """What ``unet-tf info --devices CPU:0,CPU:1 --json`` reports in this process."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli(["info", "--devices", "CPU:0,CPU:1", "--json"]) == 0
    return json.loads(out.getvalue())


def main() -> None:
    # Fixed data and initial weights: float round-off amplified by Adam varies with both.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(100, 20, (8, 32, 32, 1)).astype(np.float32)
    y = (rng.random((8, 32, 32, 1)) > 0.5).astype(np.float32)
    mirrored = tf.distribute.MirroredStrategy(["/device:CPU:0", "/device:CPU:1"])
    with mirrored.scope():
        model2 = build_model(tiny_config().model, 32)
    model1 = build_model(tiny_config().model, 32)
    model1.set_weights(model2.get_weights())
    lr2, loss2 = train(model2, x, y)
    lr1, loss1 = train(model1, x, y)
    with mirrored.scope():
        scaled = build_model(tiny_config().model, 32)
    compile_model(scaled, tiny_config(scale_lr=True))
    copies = [v.value.values for v in model2.weights]
    identical = all(
        all(np.array_equal(c[0].numpy(), other.numpy()) for other in c[1:]) for c in copies
    )
    diff = max(
        float(np.abs(a - b).max())
        for a, b in zip(model1.get_weights(), model2.get_weights(), strict=True)
    )
    result = {
        "replicas": mirrored.num_replicas_in_sync,
        "copies": min(len(c) for c in copies),
        "identical": identical,
        "max_weight_diff": diff,
        "loss_mirrored": loss2,
        "loss_single": loss1,
        "lr_mirrored": lr2,
        "lr_single": lr1,
        "lr_scaled": float(scaled.optimizer.learning_rate.numpy()),
        "sync_bn_mirrored": batchnorm_synchronized(model2),
        "sync_bn_single": batchnorm_synchronized(model1),
        "info": info_report(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
