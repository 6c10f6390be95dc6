"""Every use of Keras' private internals, in one place and behind a version guard.

Public Keras APIs cover almost everything unet-tf does. Where they do not (a Keras
bug with no public workaround), the private attribute is touched here and only here,
checked against the Keras versions it was verified with, so a Keras upgrade that
moves it fails in one line that says what to do, instead of deep inside training.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import keras
import tensorflow as tf

from unet_tf.errors import UserError

# Keras minor versions whose private attributes below were verified by the test suite.
VERIFIED_KERAS = ("3.15",)


def _check_private(obj: object, attribute: str, purpose: str) -> None:
    """Refuse (one line) if ``attribute`` is gone; warn once if this Keras is unverified."""
    version = ".".join(keras.__version__.split(".")[:2])
    if not hasattr(obj, attribute):
        raise UserError(
            f"{purpose} relies on Keras' private {type(obj).__name__}.{attribute}, which "
            f"Keras {keras.__version__} no longer has; install keras=={VERIFIED_KERAS[-1]}.*"
        )
    if version not in VERIFIED_KERAS:
        warnings.warn(
            f"{purpose} patches Keras internals verified with Keras "
            f"{', '.join(VERIFIED_KERAS)}, not {keras.__version__}",
            RuntimeWarning,
            stacklevel=3,
        )


def fix_multiworker_fit(model: keras.Model) -> None:
    """Let Keras 3 ``fit`` run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585).

    Keras 3.15 fails twice there. Before the first step it reduces a whole batch
    tuple to build metrics symbolically, which this strategy cannot do; skipping that
    (the private ``_maybe_symbolic_build``) makes Keras build them while tracing the
    first step, as it does without a strategy. After each step it averages the
    replicas' scalar logs along axis 0, which scalars lack; returning them as 1-vectors
    makes that mean the scalar Keras expects. Other strategies are left alone.
    """
    if not isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    _check_private(model, "_maybe_symbolic_build", "multiworker training")

    def as_vectors(step: Callable) -> Callable:
        def wrapped(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        return wrapped

    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    model.train_step = as_vectors(model.train_step)
    model.test_step = as_vectors(model.test_step)
