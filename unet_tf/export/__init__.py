"""Exports that run without Keras: one module per format, listed in ``registry``.

Deliberately empty: ``unet_tf.inference.predictor`` imports ``loaders`` and ``exporter``
imports the predictor, so importing ``exporter`` here would be an import cycle.
"""
