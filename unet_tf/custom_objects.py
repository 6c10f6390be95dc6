"""Register every custom Keras object, so a saved ``model.keras`` reloads anywhere.

Keras finds a layer, loss or metric named in a ``.keras`` file only if the class was
registered (``keras.saving.register_keras_serializable``) before loading. Importing
the modules that define them does that; ``import unet_tf`` imports this module, so
after it ``keras.saving.load_model("run/model.keras")`` works with no extra arguments.
"""

from unet_tf.models import input_layers, layers
from unet_tf.training import losses, metrics

MODULES = (input_layers, layers, losses, metrics)
