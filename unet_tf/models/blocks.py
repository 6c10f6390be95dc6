"""Building blocks shared by the scratch U-Net and the pretrained-encoder U-Nets."""

from __future__ import annotations

from keras import layers

from unet_tf.models.layers import MatchSize
from unet_tf.runtime.distribute import replicas_in_sync

# BatchNorm's moving statistics follow the batch statistics with this momentum: a
# window of about ten steps, PyTorch's default (Keras' 0.99 averages a hundred). With
# 0.99 the statistics trail the weights by epochs in a short run, so the per-epoch
# validation, which predicts in inference mode, scores a network that no longer
# exists: on U373 (experiments/recipes.py, defaults, 10 minutes) it read Dice 0.00 for
# eight epochs while training Dice was 0.93-0.96, and the best-epoch choice, the
# plateau schedule and time-to-accuracy all read that number. Only the moving
# statistics change; training itself normalises with each batch's own.
BATCHNORM_MOMENTUM = 0.9


def conv_block(
    x,
    filters: int,
    name: str,
    kernel_init: str = "glorot_uniform",
    dropout: float = 0.0,
    block: str = "plain",
):
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU (the U-Net's level).

    ``block="residual"`` adds the level's input to its output before the second ReLU,
    through a 1x1 convolution where the filters change (He et al., 2016; the ResUNet and
    MONAI's residual units): each level then learns a correction to what it is given,
    which keeps gradients flowing in deep or long-trained networks.
    """
    shortcut = x
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=kernel_init,
            name=f"{name}_conv{i}",
        )(x)
        x = _batch_norm(f"{name}_bn{i}")(x)
        if i == 2 and block == "residual":
            shortcut = _shortcut(shortcut, filters, name, kernel_init)
            x = layers.Add(name=f"{name}_add")([x, shortcut])
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def _batch_norm(name: str) -> layers.BatchNormalization:
    """A level's BatchNorm: the short-run momentum, and over several replicas the
    statistics of the global batch."""
    return layers.BatchNormalization(
        momentum=BATCHNORM_MOMENTUM, synchronized=replicas_in_sync() > 1, name=name
    )


def _shortcut(x, filters: int, name: str, kernel_init: str):
    """A residual level's input at its output's filters: as it is, or a 1x1 projection."""
    if x.shape[-1] == filters:
        return x
    x = layers.Conv2D(
        filters, 1, use_bias=False, kernel_initializer=kernel_init, name=f"{name}_shortcut"
    )(x)
    return _batch_norm(f"{name}_shortcut_bn")(x)


def decoder_block(
    x,
    skip,
    filters: int,
    name: str,
    skip_merge: str = "resize",
    kernel_init: str = "glorot_uniform",
    block: str = "plain",
    attention: bool = False,
):
    """Upsample by a transposed convolution, reconcile the sizes, concatenate, convolve.

    'resize' and 'pad' bring the upsampled map to the skip's size; 'crop' cuts the skip
    down to the upsampled map, as the 2015 paper cropped its unpadded maps.
    ``attention`` weighs the skip by an :func:`attention_gate` first.
    """
    x = layers.Conv2DTranspose(
        filters, 2, strides=2, padding="same", kernel_initializer=kernel_init, name=f"{name}_up"
    )(x)
    if skip is not None:
        if skip_merge == "crop":
            skip = MatchSize("crop", name=f"{name}_crop")([skip, x])
        else:
            x = MatchSize(skip_merge, name=f"{name}_match")([x, skip])
        if attention:
            skip = attention_gate(skip, x, name, kernel_init)
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    return conv_block(x, filters, name, kernel_init, block=block)


def attention_gate(skip, gate, name: str, kernel_init: str = "glorot_uniform"):
    """The skip, each pixel weighted in (0, 1) by what the coarser decoder features say.

    The additive attention gate of the Attention U-Net (Oktay et al., 2018; MONAI's
    ``AttentionUnet``): the skip and the upsampled decoder features (``gate``, at the
    skip's size) are each projected by a 1x1 convolution and BatchNorm to half the
    skip's filters, added, passed through ReLU, and a 1x1 convolution and sigmoid make
    one weight per pixel. A skip carries every edge the encoder saw at full resolution;
    the gate, which has seen the wider context, can quieten those that belong to no
    object (a lesion's rim next to a vessel, the optic disc's edge), so the decoder
    joins only the detail that matters.
    """
    inter = max(skip.shape[-1] // 2, 1)
    projected = []
    for source, part in ((skip, "skip"), (gate, "gate")):
        y = layers.Conv2D(
            inter, 1, use_bias=False, kernel_initializer=kernel_init, name=f"{name}_att_{part}"
        )(source)
        projected.append(_batch_norm(f"{name}_att_{part}_bn")(y))
    y = layers.Add(name=f"{name}_att_add")(projected)
    y = layers.Activation("relu", name=f"{name}_att_relu")(y)
    y = layers.Conv2D(1, 1, kernel_initializer=kernel_init, name=f"{name}_att_psi")(y)
    weights = layers.Activation("sigmoid", name=f"{name}_att_sigmoid")(y)
    return layers.Multiply(name=f"{name}_attention")([skip, weights])


def segmentation_head(
    x, num_classes: int, reference=None, name: str = "head", activation: str = "auto"
):
    """1x1 convolution to class scores, then a float32 sigmoid or softmax.

    ``activation`` is the config's (``ModelConfig.head``): 'sigmoid' gives every channel
    its own probability (multi-label, e.g. the distance target's foreground and
    distance map), 'softmax' one class per pixel; 'auto' is sigmoid for one channel and
    softmax for more. The activation is pinned to float32 so mixed-precision models still emit
    well-calibrated probabilities and losses see full precision. ``reference`` (the
    model input) resizes the logits back to the input size when the decoder ended
    smaller, which only happens with crop merging.
    """
    x = layers.Conv2D(num_classes, 1, name=f"{name}_logits")(x)
    if reference is not None:
        x = MatchSize("resize", name=f"{name}_to_input", dtype="float32")([x, reference])
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    return layers.Activation(activation, dtype="float32", name=f"{name}_{activation}")(x)


def max_depth(size: int) -> int:
    """Deepest U-Net that an input of ``size`` pixels supports: floor(log2(size)) - 1.

    The bottleneck then still sees at least a 2x2 map.
    """
    return max(size.bit_length() - 2, 0)
