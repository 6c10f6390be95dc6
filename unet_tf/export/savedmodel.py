"""TensorFlow SavedModel folders: the whole predictor, served by TensorFlow alone.

Endpoints (``serve`` is also ``serving_default``): ``serve`` maps float32 images
(B, H, W, C) of any size, raw intensities, to probabilities (B, H, W, K) at the same
size, normalising inside and, for a model trained on resized images, resizing inside
as ``predict`` does; ``serve_uint8`` / ``serve_uint16`` take integer images;
``network`` is the bare fully convolutional network, for tiled inference.
A SavedModel keeps the model's own precision (bfloat16 included).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from unet_tf.errors import UserError
from unet_tf.export.common import Verification, check_difference, difference

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

RUNTIME = "tf.saved_model.load"
SIGNATURE_FILE = "saved_model.pb"  # what makes a folder a SavedModel


def serving_function(model: keras.Model, resize_to: int | None):
    """Raw images in, probabilities at the input size out."""

    def serve(images):
        x = tf.cast(images, tf.float32)
        if resize_to:
            size = tf.shape(x)[1:3]
            x = tf.image.resize(x, (resize_to, resize_to), antialias=True)
            probs = tf.cast(model(x, training=False), tf.float32)
            return tf.image.resize(probs, size, antialias=True)
        return tf.cast(model(x, training=False), tf.float32)

    return serve


# ``serve`` endpoints and the input dtype each takes: raw 8- and 16-bit images too.
SERVE_ENDPOINTS = {"serve": tf.float32, "serve_uint8": tf.uint8, "serve_uint16": tf.uint16}


def write_archive(
    model: keras.Model,
    channels: int,
    resize_to: int | None,
    out: Path,
    endpoints: dict[str, tf.DType] = SERVE_ENDPOINTS,
    output_name: str | None = None,
) -> None:
    """The SavedModel folder ``out``: the ``serve`` endpoints (raw images in,
    probabilities at the input size out; a dict ``{output_name: ...}`` if named) and
    ``network`` (the bare network, which unet-tf's own loader tiles and resizes)."""
    serve = serving_function(model, resize_to)
    served = (lambda x: {output_name: serve(x)}) if output_name else serve
    spec = lambda dtype: [tf.TensorSpec([None, None, None, channels], dtype)]  # noqa: E731
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, dtype in endpoints.items():
        archive.add_endpoint(name, served, input_signature=spec(dtype))
    archive.add_endpoint(
        "network",
        lambda x: tf.cast(model(x, training=False), tf.float32),
        input_signature=spec(tf.float32),
    )
    archive.write_out(str(out), verbose=False)


def write_savedmodel(predictor: Predictor, out: Path) -> Verification:
    """Write the SavedModel folder ``out``, reload it and compare it with Keras."""
    write_archive(predictor.network, predictor.in_channels, predictor.resize_to, out)
    return Verification(verify_savedmodel(predictor, out), [])


def verify_savedmodel(predictor: Predictor, out: Path) -> float:
    """Reload the SavedModel, compare it with the Keras predictor (untiled) and return
    the largest difference seen."""
    loaded = tf.saved_model.load(str(out))
    reference = predictor.untiled()
    side = predictor.resize_to or max(predictor.min_size, 64)
    rng = np.random.default_rng(0)
    worst = 0.0
    # the odd size is larger than side on both axes: side may be the network's minimum
    for h, w in ((side, side), (side + side // 2 + 1, side + side // 4 + 3)):
        image = rng.integers(0, 256, (h, w, predictor.in_channels)).astype(np.uint8)
        expected = reference.predict(image)
        for fn, x in ((loaded.serve, image.astype(np.float32)), (loaded.serve_uint8, image)):
            got = fn(tf.constant(x[None]))[0].numpy()
            worst = max(worst, difference(got, expected, out))
    check_difference(worst, out)
    return worst


class SavedModelNetwork:
    """The ``network`` endpoint of an export; holds the loaded object so its variables live."""

    fixed_size = None

    def __init__(self, path: Path):
        if not (path / "variables" / "variables.index").exists():
            raise UserError(
                f"{path} is an incomplete SavedModel: variables/ (the weights) is missing; "
                "copy the whole folder again or export it again with `unet-tf export`"
            )
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel
            reason = str(exc).splitlines()[0][:200]
            raise UserError(
                f"cannot load SavedModel {path}: {reason}; export it again with `unet-tf export`"
            ) from None
        if not hasattr(self.loaded, "network"):
            raise UserError(
                f"{path} is a SavedModel but not one from `unet-tf export` (no network "
                "endpoint); export the run with `unet-tf export`"
            )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.loaded.network(tf.constant(batch, tf.float32)).numpy()
