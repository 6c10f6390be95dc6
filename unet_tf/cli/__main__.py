"""``python -m unet_tf.cli``: the same entry point as the ``unet-tf`` command."""

import sys

from unet_tf.cli import main

sys.exit(main())
