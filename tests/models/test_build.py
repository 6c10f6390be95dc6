"""The backbone registry and the two build steps: resolve the config, then build from it."""

from __future__ import annotations

import dataclasses

from conftest import shared_path

from unet_tf.config import ModelConfig
from unet_tf.models import BUILDERS, backbone_names, build_model, resolve_model_config
from unet_tf.models.encoders import ENCODERS
from unet_tf.models.encoders.weights import md5sum
from unet_tf.registry import Registry


def test_encoder_families_merge_into_one_registry_of_backbones():
    assert isinstance(ENCODERS, Registry) and (ENCODERS.kind, ENCODERS.option) == (
        "backbone",
        "--backbone",
    )
    assert ENCODERS.names() == ("vgg16", "resnet50", "inceptionresnetv2")
    assert all(entry.name == entry.value.name and entry.help for entry in ENCODERS)
    assert backbone_names() == ["none", *ENCODERS.names(), "sm:<name>"]
    assert list(BUILDERS) == ["none", *ENCODERS.names(), "sm"]


def test_resolving_records_the_weights_md5_and_building_uses_the_resolved_copy(monkeypatch):
    path = shared_path("weights", "vgg16_imagenet_notop.h5")
    cfg = ModelConfig(backbone="vgg16", in_channels=1, encoder_weights=str(path))
    original = dataclasses.replace(cfg)
    resolved = resolve_model_config(cfg, 32)
    assert (resolved.depth, resolved.encoder_weights_md5) == (5, md5sum(path))
    assert cfg == original
    none = resolve_model_config(dataclasses.replace(cfg, encoder_weights="none"), 32)
    assert none.encoder_weights_md5 is None
    built = []
    route = BUILDERS["vgg16"]
    monkeypatch.setitem(BUILDERS, "vgg16", route._replace(build=built.append))
    build_model(cfg, 32)
    assert built == [resolved] and cfg == original


def test_a_residual_decoder_on_a_keras_encoder_leaves_the_encoder_as_it_was():
    cfg = ModelConfig(backbone="vgg16", in_channels=3, encoder_weights="none")
    plain = build_model(cfg, 32)
    residual = build_model(dataclasses.replace(cfg, block="residual"), 32)
    added = {layer.name for layer in residual.layers} - {layer.name for layer in plain.layers}
    # each of the 5 decoder levels gains a shortcut (its input has other filters) and an add
    levels = [f"dec{k}" for k in range(1, 6)]
    expected = {f"{d}_{part}" for d in levels for part in ("shortcut", "shortcut_bn", "add")}
    assert added == expected
    encoder = [residual.get_layer("encoder"), plain.get_layer("encoder")]
    assert encoder[0].count_params() == encoder[1].count_params()


def test_attention_on_a_keras_encoder_gates_each_skip_and_leaves_the_encoder_as_it_was():
    cfg = ModelConfig(backbone="vgg16", in_channels=3, encoder_weights="none")
    plain = build_model(cfg, 32)
    gated = build_model(dataclasses.replace(cfg, attention=True), 32)
    added = {layer.name for layer in gated.layers} - {layer.name for layer in plain.layers}
    parts = ("att_skip", "att_skip_bn", "att_gate", "att_gate_bn", "att_add", "att_relu")
    parts += ("att_psi", "att_sigmoid", "attention")
    assert added == {f"dec{k}_{part}" for k in range(1, 6) for part in parts}
    encoder = [gated.get_layer("encoder"), plain.get_layer("encoder")]
    assert encoder[0].count_params() == encoder[1].count_params()
