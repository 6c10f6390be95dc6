"""Prediction with ``--object-size``: measured on a first pass, predicted again rescaled."""

from __future__ import annotations

import numpy as np

from tests.data.test_scale import discs
from unet_tf.config import RunConfig
from unet_tf.evaluation.provenance import inference_settings
from unet_tf.inference.predictor import InferenceOptions, Predictor


def recording_network(calls: list[tuple[int, int]]):
    """A "network" whose foreground and distance channels are the image; it logs sizes."""

    def network(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[1:3])
        return np.concatenate([batch, batch], axis=-1)

    return network


def distance_config(object_size: float | None) -> RunConfig:
    cfg = RunConfig()
    cfg.model.in_channels, cfg.model.num_classes, cfg.model.depth = 1, 2, 2
    cfg.data.patch, cfg.data.target, cfg.data.object_size = 32, "distance", object_size
    return cfg


def test_small_objects_are_predicted_again_at_twice_the_size_and_returned_at_the_images():
    image = (discs((64, 64), [(20, 20), (40, 44)], 10) > 0).astype(np.float32)[..., None]
    calls: list[tuple[int, int]] = []
    cfg = distance_config(object_size=4 * 101**0.5)  # twice the discs' diameter
    predictor = Predictor(recording_network(calls), cfg, InferenceOptions(tile=0))
    probs = predictor.predict(image)
    # Native pass, then one at 2x; measured again there, the scale holds, so no third.
    assert calls == [(64, 64), (128, 128)]
    assert probs.shape == (64, 64, 2)
    assert np.mean((probs[..., 0] > 0.5) == (image[..., 0] > 0.5)) > 0.98
    assert "rescaled to objects of 40.2 px" in predictor.describe()
    assert inference_settings(predictor)["object_size"] == cfg.data.object_size  # evaluate JSON


def test_objects_already_at_the_size_take_one_pass_and_without_the_option_nothing_changes():
    image = (discs((64, 64), [(32, 32)], 10) > 0).astype(np.float32)[..., None]
    for object_size in (20.0, None):
        calls: list[tuple[int, int]] = []
        cfg = distance_config(object_size)
        Predictor(recording_network(calls), cfg, InferenceOptions(tile=0)).predict(image)
        assert calls == [(64, 64)]
