"""unet-tf: U-Nets for 2-D biomedical image segmentation in Keras 3 / TensorFlow.

``import unet_tf`` registers every custom Keras object (so ``keras.saving.load_model``
opens a saved ``model.keras``) and offers the notebook API::

    unet_tf.Unet, unet_tf.build_model, unet_tf.load_model, unet_tf.plan, unet_tf.fit,
    unet_tf.tune, unet_tf.predict, unet_tf.evaluate, unet_tf.folder_dataset,
    unet_tf.RunConfig

The API functions are imported on first use, so the command line and light imports do
not pay for the training and evaluation stack.

The environment variables below must be set before TensorFlow, albumentations or
segmentation-models are imported anywhere, so they live in the package root.
"""

import importlib
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

try:
    with silenced_stderr():  # TensorFlow's C++ start-up lines would drown our own output
        from unet_tf import custom_objects  # noqa: F401  (registers every custom Keras object)
except ModuleNotFoundError as exc:
    if exc.name != "tensorflow":
        raise
    raise ModuleNotFoundError(
        "unet-tf needs TensorFlow 2.16-2.21, which is an extra so that an installed one is "
        'kept: pip install "unet-tf[cpu]" (or "unet-tf[gpu]" for NVIDIA GPUs)',
        name="tensorflow",
    ) from None

# Public name -> the module that defines it.
_API = {
    "Unet": "unet_tf.models.api",
    "build_model": "unet_tf.models",
    "RunConfig": "unet_tf.config",
    "Predictor": "unet_tf.inference.predictor",
    "InferenceOptions": "unet_tf.inference.predictor",
    "load_model": "unet_tf.api",
    "fit": "unet_tf.api",
    "plan": "unet_tf.api",
    "tune": "unet_tf.api",
    "predict": "unet_tf.api",
    "evaluate": "unet_tf.api",
    "configure": "unet_tf.api",
    "folder_dataset": "unet_tf.api",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'unet_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
