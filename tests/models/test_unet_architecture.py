"""The scratch U-Net: shapes at many sizes, depth rules, heads and precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model
from unet_tf.models.blocks import max_depth
from unet_tf.models.unet import build_unet, resolve_depth


@pytest.mark.parametrize("merge", ["resize", "crop", "pad"])
@pytest.mark.parametrize("shape", [(64, 64), (67, 45), (33, 100), (128, 96)])
def test_output_matches_any_input_size(merge, shape):
    model = build_unet(1, depth=3, base_filters=4, skip_merge=merge)
    x = np.random.default_rng(0).random((2, *shape, 1), dtype=np.float32)
    y = model(x).numpy()
    assert y.shape == (2, *shape, 1)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_one_model_serves_several_sizes():
    model = build_unet(3, depth=2, base_filters=4)
    assert model.input_shape == (None, None, None, 3)
    for shape in [(16, 16), (40, 56), (99, 17)]:
        assert model(np.zeros((1, *shape, 3), np.float32)).shape == (1, *shape, 1)


def test_filters_double_per_level_and_blocks_are_conv_bn_relu():
    model = build_unet(1, depth=3, base_filters=8)
    assert [model.get_layer(f"enc{i}_conv1").filters for i in (1, 2, 3)] == [8, 16, 32]
    assert model.get_layer("bottleneck_conv2").filters == 64
    assert model.get_layer("dec1_up").__class__.__name__ == "Conv2DTranspose"
    assert isinstance(model.get_layer("enc1_bn1"), keras.layers.BatchNormalization)
    assert model.get_layer("enc1_relu2").get_config()["activation"] == "relu"
    assert model.get_layer("enc1_conv1").kernel_size == (3, 3)
    assert model.get_layer("enc1_pool").pool_size == (2, 2)


def test_max_depth_is_floor_log2_minus_one():
    assert [max_depth(s) for s in (4, 7, 8, 256, 565)] == [1, 1, 2, 7, 8]


def test_depth_adapts_and_rejects_too_deep():
    assert resolve_depth(None, 256) == 4
    assert resolve_depth(None, 16) == 3
    assert resolve_depth(2, 64) == 2
    with pytest.raises(ValueError, match="depth 6 needs inputs of at least 128 px"):
        resolve_depth(6, 64)


def test_build_model_reports_bad_depth_as_user_error():
    cfg = ModelConfig(depth=9, in_channels=1, base_filters=4)
    with pytest.raises(UserError, match="depth 9"):
        build_model(cfg, 64)


def test_build_model_rejects_unknown_backbone():
    with pytest.raises(UserError, match="unknown backbone 'resnet9000'"):
        build_model(ModelConfig(backbone="resnet9000", in_channels=1), 64)


def test_softmax_head_sums_to_one():
    model = build_unet(1, num_classes=3, depth=2, base_filters=4)
    y = model(np.random.default_rng(1).random((1, 32, 40, 1), dtype=np.float32)).numpy()
    assert y.shape == (1, 32, 40, 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_final_activation_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(1, depth=2, base_filters=4)
        assert model.get_layer("enc1_conv1").compute_dtype == "bfloat16"
        assert model(np.ones((1, 32, 32, 1), np.float32)).dtype.name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_standardisation_makes_the_model_gain_invariant():
    model = build_unet(1, depth=2, base_filters=4)
    x = np.random.default_rng(2).random((1, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x).numpy(), model(x * 257.0 + 1000).numpy(), atol=1e-4)


def test_glorot_initialisation_and_dropout_placement():
    model = build_unet(1, depth=2, base_filters=4, dropout=0.5)
    assert model.get_layer("enc1_conv1").kernel_initializer.__class__.__name__ == "GlorotUniform"
    assert {layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)} == {
        "enc2_dropout",
        "bottleneck_dropout",
    }
