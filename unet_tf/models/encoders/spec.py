"""What every encoder family file declares: one ``EncoderSpec`` per backbone.

A spec says which layers feed the U-Net's skips (shallow to deep, at strides 1, 2,
4, 8 and 16 of the input), which layer is the bottleneck (stride 32), how the
encoder wants its pixels (``preprocessing``: keras.applications' mode), the
smallest input side it accepts, and the ImageNet weights Keras downloads for it.
"input" as a skip means the preprocessed image itself.

Skips are picked by layer names the architecture code sets explicitly. Keras's
automatic names (``activation_4``) depend on what was built earlier in the process,
so they are never used; a family whose layers have no stable names gives them
some in ``prepare`` (see ``inception_resnet.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

INPUT = "input"


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
    # The md5 keras.applications checks that file against (``file_hash``): Keras
    # re-downloads a cached copy that differs, so it is the md5 of what gets loaded.
    imagenet_md5: str
    help: str = ""  # one line for --help and docs
    prepare: Callable[[keras.Model], None] | None = None

    def preprocess(self, x):
        """The encoder's ``preprocess_input`` (imagenet_utils, in this spec's mode)."""
        return keras.applications.imagenet_utils.preprocess_input(x, mode=self.preprocessing)
