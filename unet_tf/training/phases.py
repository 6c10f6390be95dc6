"""Training in phases: ``--freeze-epochs K`` trains with a frozen encoder, then fine-tunes.

The first K epochs train only the decoder, so its random initial gradients cannot
wreck the pretrained features; then every layer is unfrozen and training continues
from epoch K at a lower learning rate (``fine_tune_lr``, default LR/10) with a new
optimizer. Without ``freeze_epochs`` there is one phase, exactly the plain fit.

Resuming: each phase has its own backup folder (``unet_tf.training.checkpoints``), because
the optimizers of the two phases hold different variables. The frozen phase's folder
sits inside the run's backup folder and is kept when the phase ends, so a run
interrupted in the fine-tuning phase restores the frozen phase's final state, skips
that phase, and then restores the fine-tuning state. The whole backup folder, the
frozen phase's with it, is removed once the run's metrics.json is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import keras

from unet_tf.config import RunConfig, TrainConfig

FINE_TUNE_LR_FACTOR = 0.1
FROZEN_BACKUP = "frozen"


@dataclass(frozen=True)
class Phase:
    name: str
    start: int  # first epoch (0-based)
    end: int  # one past the last epoch
    lr: float
    unfreeze: bool  # make every layer trainable and recompile before this phase
    backup: str | None = None  # sub-folder of the run's backup folder, kept after the phase

    def backup_dir(self, run_backup: Path) -> Path:
        return run_backup / self.backup if self.backup else run_backup

    def train_config(self, cfg: TrainConfig) -> TrainConfig:
        """The training settings with this phase's learning rate (for the LR schedule)."""
        return replace(cfg, lr=self.lr)


def fine_tune_lr(cfg: RunConfig) -> float:
    lr = cfg.train.fine_tune_lr
    return cfg.train.lr * FINE_TUNE_LR_FACTOR if lr is None else lr


def training_phases(cfg: RunConfig) -> list[Phase]:
    """One phase, or frozen-then-fine-tuning when ``model.freeze_epochs`` is set."""
    epochs, frozen = cfg.epochs, cfg.model.freeze_epochs
    if frozen <= 0:
        return [Phase("training", 0, epochs, cfg.train.lr, unfreeze=False)]
    return [
        Phase("frozen encoder", 0, frozen, cfg.train.lr, unfreeze=False, backup=FROZEN_BACKUP),
        Phase("fine-tuning", frozen, epochs, fine_tune_lr(cfg), unfreeze=True),
    ]


def unfreeze(model: keras.Model) -> None:
    """Make every layer trainable; BatchNorm layers go back to batch statistics."""
    model.trainable = True
