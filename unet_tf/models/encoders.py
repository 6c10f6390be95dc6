"""The keras.applications ImageNet encoders: one table entry per backbone.

Each entry says which layers feed the U-Net's skips (shallow to deep, at strides
1, 2, 4, 8 and 16 of the input), which layer is the bottleneck (stride 32), how
the encoder wants its pixels (``preprocessing``: keras.applications' mode), the
smallest input side it accepts, and the file name of Keras's ImageNet weights.
"input" as a skip means the preprocessed image itself.

Skips are picked by layer names the architecture code sets explicitly. Keras's
automatic names (``activation_4``) depend on what was built earlier in the process,
so they are never used. InceptionResNetV2's stem has no explicit names at all;
``name_irv2_stem`` gives the two stem activations we tap stable names, found by
their position in the stem, which the architecture fixes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras

from unet_tf.errors import UserError

INPUT = "input"


def name_irv2_stem(app: keras.Model) -> None:
    """Name InceptionResNetV2's stride-2 and stride-4 stem activations.

    The stem is five conv-BN-ReLU units before ``mixed_5b``: the first (stride 2,
    127 px at a 256 input) and the fifth (stride 4, 60 px, the last before the
    second pooling) are the skips. Renaming changes no weights.
    """
    stem_end = app.layers.index(app.get_layer("mixed_5b"))
    stem = app.layers[:stem_end]
    activations = [layer for layer in stem if isinstance(layer, keras.layers.Activation)]
    pooling = [layer for layer in stem if isinstance(layer, keras.layers.MaxPooling2D)]
    if len(pooling) != 2 or pooling[1].input is not activations[4].output:
        raise RuntimeError("unexpected InceptionResNetV2 stem layout in this Keras version")
    activations[0].name = "stem_conv1_ac"
    activations[4].name = "stem_conv5_ac"


@dataclass(frozen=True)
class EncoderSpec:
    """How one keras.applications network becomes a U-Net encoder."""

    name: str
    constructor: Callable[..., keras.Model]
    skips: tuple[str, ...]  # strides 1, 2, 4, 8, 16
    bottleneck: str  # stride 32
    preprocessing: str  # keras.applications.imagenet_utils mode: caffe or tf
    min_size: int
    weights_file: str  # what keras.applications downloads for include_top=False
    prepare: Callable[[keras.Model], None] | None = None

    def preprocess(self, x):
        """The encoder's ``preprocess_input`` (imagenet_utils, in this spec's mode)."""
        return keras.applications.imagenet_utils.preprocess_input(x, mode=self.preprocessing)


ENCODERS: dict[str, EncoderSpec] = {
    "vgg16": EncoderSpec(
        name="vgg16",
        constructor=keras.applications.VGG16,
        skips=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        bottleneck="block5_pool",
        preprocessing="caffe",
        min_size=32,
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "resnet50": EncoderSpec(
        name="resnet50",
        constructor=keras.applications.ResNet50,
        skips=(INPUT, "conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
        bottleneck="conv5_block3_out",
        preprocessing="caffe",
        min_size=32,
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "inceptionresnetv2": EncoderSpec(
        name="inceptionresnetv2",
        constructor=keras.applications.InceptionResNetV2,
        # 'valid' padding: 127/60/29/14/6 px at a 256 input; the decoder resizes to each.
        skips=(INPUT, "stem_conv1_ac", "stem_conv5_ac", "block35_10_ac", "block17_20_ac"),
        bottleneck="conv_7b_ac",
        preprocessing="tf",
        min_size=75,
        weights_file="inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        prepare=name_irv2_stem,
    ),
}


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


def resolve_weights(setting: str, expected: str) -> tuple[str | None, str | None]:
    """The ``weights=`` argument for an encoder constructor and the md5 of a local file.

    ``setting`` is 'imagenet' (Keras downloads and caches), 'none' or a path;
    ``expected`` names the file a user should pass, for the error messages.
    """
    if setting == "none":
        return None, None
    if setting == "imagenet":
        return "imagenet", None
    path = Path(setting).expanduser()
    if not path.is_file():
        raise UserError(
            f"encoder weights file not found: {path}; pass --encoder-weights imagenet, none "
            f"or the path of a local {expected}"
        )
    if path.suffix != ".h5":
        raise UserError(f"encoder weights {path} must be a Keras .h5 file such as {expected}")
    return str(path), md5sum(path)


def load_application(spec: EncoderSpec, setting: str) -> tuple[keras.Model, str | None]:
    """The keras.applications network without its classifier, and its weights' md5."""
    weights, md5 = resolve_weights(setting, spec.weights_file)
    cached = keras_cache_path(spec.weights_file)
    try:
        app = spec.constructor(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as exc:  # Keras raises a bare Exception for a failed download
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
    if weights == "imagenet" and cached.exists():
        md5 = md5sum(cached)
    if spec.prepare is not None:
        spec.prepare(app)
    return app, md5
