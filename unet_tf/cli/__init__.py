"""The ``unet-tf`` command line: ``main`` is the console script, ``cli`` the Click group.

``python -m unet_tf.cli`` runs the same entry point.
"""

from unet_tf.cli.main import cli, main

__all__ = ["cli", "main"]
