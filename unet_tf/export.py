"""Export to a TensorFlow SavedModel that needs neither Keras nor this package.

Endpoints (``serve`` is also ``serving_default``):

- ``serve``: float32 images (B, H, W, C) of any size, raw intensities, to
  probabilities (B, H, W, K) at the same size. Per-image normalisation is inside the
  network; a model trained on resized images also resizes inside, as ``predict`` does.
- ``serve_uint8`` / ``serve_uint16``: the same for integer images.
- ``network``: the bare fully convolutional network, for tiled inference.

Before reporting success the export is reloaded with ``tf.saved_model.load`` and
compared with the Keras model on two images, one of them an odd size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unet_tf.errors import UserError
from unet_tf.inference import EXPORT_CONFIG, Predictor

TOLERANCE = 1e-3


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


def export_savedmodel(predictor: Predictor, out: Path, overwrite: bool = False) -> float:
    """Write the SavedModel, verify it, and return the largest difference seen."""
    model = predictor.network
    if not isinstance(model, keras.Model):
        raise UserError(
            "this model is already an export; export from a run directory or .keras file"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise UserError(f"{out} already exists; pass --overwrite or choose another --out")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    channels = predictor.in_channels
    serve = serving_function(model, predictor.resize_to)
    spec = lambda dtype: [tf.TensorSpec([None, None, None, channels], dtype)]  # noqa: E731
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=spec(tf.float32))
    archive.add_endpoint("serve_uint8", serve, input_signature=spec(tf.uint8))
    archive.add_endpoint("serve_uint16", serve, input_signature=spec(tf.uint16))
    archive.add_endpoint(
        "network",
        lambda x: tf.cast(model(x, training=False), tf.float32),
        input_signature=spec(tf.float32),
    )
    archive.write_out(str(out), verbose=False)
    predictor.cfg.save(out / EXPORT_CONFIG)
    try:
        return verify_export(predictor, out)
    except UserError:
        shutil.rmtree(out)
        raise


def verify_export(predictor: Predictor, out: Path) -> float:
    """Reload the SavedModel and compare it with the Keras predictor."""
    loaded = tf.saved_model.load(str(out))
    side = predictor.resize_to or max(predictor.min_size, 64)
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in ((side, side), (side + side // 2 + 1, side - side // 4 + 3)):
        image = rng.integers(0, 256, (h, w, predictor.in_channels)).astype(np.uint8)
        expected = predictor.predict(image)
        for fn, x in ((loaded.serve, image.astype(np.float32)), (loaded.serve_uint8, image)):
            got = fn(tf.constant(x[None]))[0].numpy()
            worst = max(worst, float(np.max(np.abs(got - expected))))
    if worst > TOLERANCE:
        raise UserError(
            f"the export at {out} differs from the Keras model by {worst:.2e} "
            f"(more than {TOLERANCE:.0e}); it was removed. Please report this as a bug"
        )
    return worst
