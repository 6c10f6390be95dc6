"""The U-Net of Ronneberger et al. (2015), built from scratch with 'same' padding."""

from __future__ import annotations

import keras
from keras import layers

from unet_tf.models.blocks import conv_block, decoder_block, max_depth, segmentation_head
from unet_tf.models.layers import PerImageStandardize

DEFAULT_DEPTH = 4  # the 2015 paper's four poolings


def resolve_depth(depth: int | None, input_size: int) -> int:
    """Pick the depth for an input size, or reject one that the size cannot support."""
    deepest = max_depth(input_size)
    if deepest < 1:
        raise ValueError(f"input size {input_size} is too small for a U-Net; use at least 4 px")
    if depth is None:
        return min(DEFAULT_DEPTH, deepest)
    if depth < 1 or depth > deepest:
        raise ValueError(
            f"depth {depth} needs inputs of at least {2 ** (depth + 1)} px, but the training "
            f"size is {input_size} px; use depth 1-{deepest} or a larger --size/--patch"
        )
    return depth


def build_unet(
    in_channels: int,
    num_classes: int = 1,
    depth: int = DEFAULT_DEPTH,
    base_filters: int = 32,
    skip_merge: str = "resize",
    dropout: float = 0.0,
    kernel_init: str = "glorot_uniform",
    name: str = "unet",
    activation: str = "auto",
    block: str = "plain",
    attention: bool = False,
) -> keras.Model:
    """Build a U-Net that accepts any image size of at least ``2 ** (depth + 1)`` px.

    Filters double at every level from ``base_filters``. Dropout, as in the paper, sits
    at the end of the contracting path (the deepest encoder level and the bottleneck).
    ``block`` is every level's :func:`conv_block`: 'plain' (the paper's) or 'residual'.
    ``attention`` gates every skip (:func:`attention_gate`), as the Attention U-Net does.
    """
    inputs = keras.Input((None, None, in_channels), name="image")
    x = PerImageStandardize(name="standardize")(inputs)
    skips = []
    for level in range(depth):
        drop = dropout if level == depth - 1 else 0.0
        x = conv_block(x, base_filters * 2**level, f"enc{level + 1}", kernel_init, drop, block)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, "bottleneck", kernel_init, dropout, block)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = decoder_block(
            x, skips[level], filters, f"dec{level + 1}", skip_merge, kernel_init, block, attention
        )
    reference = inputs if skip_merge == "crop" else None
    outputs = segmentation_head(x, num_classes, reference, activation=activation)
    return keras.Model(inputs, outputs, name=name)
