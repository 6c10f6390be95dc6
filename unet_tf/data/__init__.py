"""Readers that turn files on disk into :class:`Sample` objects, and the tf.data pipeline."""

from unet_tf.data.sample import Sample

__all__ = ["Sample"]
