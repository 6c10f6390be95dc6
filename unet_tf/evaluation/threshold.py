"""``--threshold auto``: the Dice-optimal threshold on the validation set, chosen once.

A model trained with a class-imbalanced or Dice-based loss is rarely calibrated, so
0.5 need not be its best cut. At the end of ``fit`` the validation images are
predicted at full size, the pooled Dice of ``p > t`` is computed for t = 0.05, 0.06,
..., 0.95 from the probability histograms, and the best t is written into the run's
``config.yaml`` (``train.threshold``), where ``predict`` and ``evaluate`` read it.
"""

from __future__ import annotations

from unet_tf.config import RunConfig
from unet_tf.data.sample import Sample
from unet_tf.evaluation.scoring import evaluate_samples
from unet_tf.inference.predictor import Predictor


def choose_threshold(predictor: Predictor, val: list[Sample], cfg: RunConfig) -> float:
    """The Dice-optimal threshold on ``val`` (0.5 when there is nothing to choose).

    Multi-class models take the arg-max and have no threshold to choose.
    """
    if cfg.model.num_classes != 1 or not val:
        return 0.5
    threshold, _ = evaluate_samples(predictor, val, cfg).histogram.best_threshold()
    return float(threshold)
