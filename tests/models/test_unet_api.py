"""``Unet``: segmentation_models.Unet's arguments, unet-tf's build path."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from unet_tf.config import ModelConfig
from unet_tf.errors import UserError
from unet_tf.models import build_model
from unet_tf.models.api import Unet

SM_KEYWORDS = (
    "backbone_name",
    "input_shape",
    "classes",
    "activation",
    "encoder_weights",
    "encoder_freeze",
)


def test_keywords_and_order_match_segmentation_models():
    assert tuple(inspect.signature(Unet).parameters)[: len(SM_KEYWORDS)] == SM_KEYWORDS
    sm = pytest.importorskip("segmentation_models")
    theirs = inspect.signature(sm.Unet).parameters
    assert all(name in theirs for name in SM_KEYWORDS)


def test_builds_what_the_cli_builds():
    model = Unet("vgg16", input_shape=(None, None, 1), encoder_weights=None, encoder_freeze=True)
    cfg = ModelConfig(backbone="vgg16", in_channels=1, encoder_weights="none", freeze=True)
    cli = build_model(cfg, 256)
    assert model.name == cli.name == "unet_vgg16"
    assert [layer.name for layer in model.layers] == [layer.name for layer in cli.layers]
    assert (model.count_params(), len(model.trainable_weights)) == (
        cli.count_params(),
        len(cli.trainable_weights),
    )


def test_aliases_softmax_and_the_scratch_options():
    model = Unet(backbone="none", in_channels=2, classes=3, activation="softmax", base_filters=4)
    assert model.get_layer("enc1_conv1").filters == 4 and model.get_layer("enc4_conv1")
    probs = np.asarray(model(np.zeros((1, 20, 24, 2), np.float32)))
    assert probs.shape == (1, 20, 24, 3)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    small = Unet(input_shape=(16, 16, 1), base_filters=4)  # depth adapts to the size
    assert "enc3_conv1" in [layer.name for layer in small.layers]
    assert "enc4_conv1" not in [layer.name for layer in small.layers]


def test_sigmoid_head_with_two_channels_saves_and_loads(tmp_path):
    """The distance target's head: two independent float32 sigmoids, through a .keras file."""
    model = Unet(in_channels=1, classes=2, activation="sigmoid", base_filters=4, depth=2)
    assert model.layers[-1].name == "head_sigmoid"
    image = np.random.default_rng(0).random((1, 16, 16, 1)).astype(np.float32)
    probs = np.asarray(model(image))
    assert probs.shape == (1, 16, 16, 2) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))
    assert not np.allclose(probs.sum(axis=-1), 1.0, atol=1e-3)  # not a softmax
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded(image)), probs, atol=1e-6)


def test_attention_is_a_keyword_of_the_notebook_api():
    model = Unet(in_channels=1, base_filters=4, depth=2, attention=True)
    assert [layer.name for layer in model.layers if layer.name.endswith("_attention")] == [
        "dec2_attention",
        "dec1_attention",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "relu"}, r"activation 'relu' with classes=1 is not available"),
        ({"classes": 1, "activation": "softmax"}, r"activation='softmax' with classes >= 2"),
        ({"backbone_name": "vgg16", "backbone": "resnet50"}, r"backbone_name='vgg16' and back"),
        ({"input_shape": (None, None, 1), "in_channels": 3}, r"input_shape\[-1\]=1 and in_c"),
        ({"input_shape": (64, 64)}, r"must be \(height, width, channels\)"),
        ({"encoder_freeze": True}, r"need a pretrained --backbone"),
        ({"backbone": "vgg16", "input_shape": (16, 16, 3)}, r"16 is too small for the vgg16"),
        ({"backbone": "resnet9000"}, r"unknown backbone 'resnet9000'"),
        ({"backbone": "vgg16", "encoder_weights": "missing.h5"}, r"weights file not found"),
    ],
)
def test_impossible_arguments_are_one_line_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        Unet(**kwargs)
    assert "\n" not in str(info.value)


def test_agreeing_aliases_are_accepted():
    model = Unet("none", (None, None, 1), backbone="none", in_channels=1, base_filters=4, depth=1)
    assert model.input_shape == (None, None, None, 1)
