"""What ``evaluate`` scores a model on, and how: the rules for choosing data and measures.

A run's config says how its data was read; evaluating it means reading annotated data
the same way, with two Cell Tracking Challenge rules on top: the sequences scored are
the run's validation sequences (scoring the ones it trained on would flatter it), and
SEG, the challenge's own measure, is reported even without ``--instances``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unet_tf.data.formats.registry import detect_format, read_dataset, sample_data_dir
from unet_tf.data.sample import Sample
from unet_tf.evaluation.scoring import Evaluation, evaluate_samples
from unet_tf.inference.postprocess import InstanceOptions
from unet_tf.inference.predictor import Predictor


@dataclass(frozen=True)
class EvaluationPlan:
    """The samples to score and the predictor that carries the data settings to score with.

    ``predictor`` is the loaded one with its config replaced by the evaluation's, so the
    scores and a report written from it (which reads ``predictor.cfg``) agree.
    """

    predictor: Predictor
    root: Path
    samples: list[Sample]
    instances: InstanceOptions | None

    def run(self, on_image: Callable[[Sample, np.ndarray], None] | None = None) -> Evaluation:
        """Predict and score every sample; ``on_image`` sees each one's probabilities."""
        return evaluate_samples(
            self.predictor, self.samples, on_image=on_image, instances=self.instances
        )


def plan_evaluation(
    predictor: Predictor,
    data: Path | None = None,
    fmt: str = "auto",
    mask_threshold: float | None = None,
    instances: InstanceOptions | None = None,
) -> EvaluationPlan:
    """Read the annotated data at ``data`` (default: the bundled sample) for ``predictor``.

    ``fmt`` and ``mask_threshold`` override the run's data settings. The loaded
    predictor is left as it is: the plan holds a new one with a copy of its config.
    """
    cfg = copy.deepcopy(predictor.cfg)
    cfg.data.format = fmt
    # CTC: score the run's validation sequences (or all), never its training ones.
    cfg.data.sequences, cfg.data.val_sequences = cfg.data.val_sequences, None
    if mask_threshold is not None:
        cfg.data.mask_threshold = mask_threshold
    root = data or sample_data_dir()
    samples = read_dataset(data, cfg.data)
    if instances is None and (fmt if fmt != "auto" else detect_format(root)) == "ctc":
        instances = InstanceOptions()  # the CTC's own measure is SEG
    scorer = Predictor(predictor.network, cfg, predictor.options, predictor.history)
    return EvaluationPlan(scorer, root, samples, instances)
