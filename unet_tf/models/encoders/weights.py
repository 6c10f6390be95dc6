"""Encoder weights: what ``--encoder-weights`` loads, its md5, and loading it.

The setting is 'imagenet' (Keras downloads and caches), 'none' or the path of a
local ``.h5``. Resolution (``weights_argument``, ``weights_md5``) reads only the
setting and the file, so a run's config can record the md5 before anything is
built; ``load_application`` then builds the network and turns Keras's assorted
download and loading failures into one-line ``UserError``s.
"""

from __future__ import annotations

import hashlib
import os
from functools import partial
from pathlib import Path

import keras

from unet_tf.errors import UserError
from unet_tf.models.encoders.spec import EncoderSpec


def keras_cache_path(filename: str) -> Path:
    """Where ``keras.utils.get_file`` caches a model file: ``$KERAS_HOME/models``,
    else ``~/.keras/models``, else (home not writable) ``/tmp/.keras/models``."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
        home = base / ".keras"
    return Path(home) / "models" / filename


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(partial(f.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_argument(setting: str, expected: str) -> str | None:
    """The ``weights=`` argument for an encoder constructor: 'imagenet', None or a path.

    ``expected`` names the file a user should pass, for the error messages.
    """
    if setting == "none":
        return None
    if setting == "imagenet":
        return "imagenet"
    path = Path(setting).expanduser()
    if not path.is_file():
        raise UserError(
            f"encoder weights file not found: {path}; pass --encoder-weights imagenet, none "
            f"or the path of a local {expected}"
        )
    if path.suffix != ".h5":
        raise UserError(f"encoder weights {path} must be a Keras .h5 file such as {expected}")
    return str(path)


def weights_md5(setting: str, expected: str, imagenet_md5: str | None = None) -> str | None:
    """The md5 of the file ``setting`` loads, or None when no file is loaded or known.

    For 'imagenet' that is ``imagenet_md5``: Keras checks its download against it.
    """
    weights = weights_argument(setting, expected)
    if weights is None:
        return None
    if weights == "imagenet":
        return imagenet_md5
    return md5sum(Path(weights))


def load_application(spec: EncoderSpec, setting: str) -> keras.Model:
    """The keras.applications network of ``spec`` without its classifier."""
    weights = weights_argument(setting, spec.weights_file)
    try:
        app = spec.constructor(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as exc:  # Keras raises a bare Exception for a failed download
        cached = keras_cache_path(spec.weights_file)
        if weights == "imagenet" and not cached.exists():
            raise UserError(
                f"no ImageNet weights could be fetched for {spec.name} (Keras expects "
                f"{cached}); pass --encoder-weights PATH with a local copy of "
                f"{spec.weights_file}, or --encoder-weights none"
            ) from None
        if weights not in (None, "imagenet"):
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise UserError(
                f"cannot load {weights} into the {spec.name} encoder: {reason}; "
                f"pass a {spec.weights_file} file"
            ) from None
        raise
    if spec.prepare is not None:
        spec.prepare(app)
    return app
