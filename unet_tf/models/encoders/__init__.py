"""The keras.applications ImageNet encoders, one file per backbone family.

As in segmentation_models.pytorch's ``encoders/``, each family file (``vgg.py``,
``resnet.py``, ``inception_resnet.py``) declares its ``EncoderSpec``s and this
module merges them into one registry, so ``--backbone``'s choices, its "unknown
backbone" message and ``unet_tf.models.BUILDERS`` all follow from the family files.
Adding a backbone is one spec in its family file (see ``spec.py`` for the fields).
"""

from __future__ import annotations

from unet_tf.models.encoders.inception_resnet import INCEPTION_RESNET_ENCODERS
from unet_tf.models.encoders.resnet import RESNET_ENCODERS
from unet_tf.models.encoders.spec import INPUT, EncoderSpec
from unet_tf.models.encoders.vgg import VGG_ENCODERS
from unet_tf.registry import Registry


def _merge(*families: tuple[EncoderSpec, ...]) -> Registry[EncoderSpec]:
    registry: Registry[EncoderSpec] = Registry("backbone", "--backbone")
    for spec in (spec for family in families for spec in family):
        registry.add(spec.name, spec, spec.help)
    return registry


ENCODERS = _merge(VGG_ENCODERS, RESNET_ENCODERS, INCEPTION_RESNET_ENCODERS)

__all__ = ["ENCODERS", "INPUT", "EncoderSpec"]
