"""unet-tf: U-Nets for 2-D biomedical image segmentation in Keras 3 / TensorFlow.

The environment variables below must be set before TensorFlow, albumentations or
segmentation-models are imported anywhere, so they live in the package root.
"""

import os

# albumentations checks PyPI for updates on import; that hangs on offline machines.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# segmentation-models only works on Keras 3 through its tf.keras code path.
os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
# TensorFlow's C++ start-up chatter hides our own messages on the command line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# Set before the imports below: modules import it while the package initialises.
from unet_tf.runtime.quiet import silenced_stderr

with silenced_stderr():  # TensorFlow's C++ start-up lines would drown our own output
    from unet_tf import custom_objects  # noqa: F401  (registers every custom Keras object)
