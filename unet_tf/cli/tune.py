"""``unet-tf tune``: search the recipe with KerasTuner; every trial is a normal run."""

from __future__ import annotations

import click

from unet_tf.cli.options import EXISTING, choice, comma_list, path_str
from unet_tf.config import ATTENTION, BLOCKS, RunConfig, override
from unet_tf.data.formats.registry import FORMAT_CHOICES


@click.command()
@click.argument("data", type=EXISTING)
@click.option("--config", "config_file", type=EXISTING, help="Start from a config or a plan.")
@click.option("--format", "fmt", type=choice(FORMAT_CHOICES), help="Dataset layout [auto].")
@click.option("--max-trials", type=int, default=10, help="Trials at most [10].")
@click.option("--budget", help="Wall-clock limit for the whole search, e.g. 60m.")
@click.option(
    "--tuner",
    type=choice(("bayesian", "random")),
    default="bayesian",
    help="KerasTuner oracle [bayesian].",
)
@click.option(
    "--backbones",
    default="none",
    help="Encoders to try, e.g. none,vgg16 (pretrained ones need --encoder-weights) [none].",
)
@click.option(
    "--blocks",
    default=BLOCKS[0],
    help=f"U-Net levels to try, from {','.join(BLOCKS)} (see fit --block) [{BLOCKS[0]}].",
)
@click.option(
    "--attention",
    default=ATTENTION[0],
    help=f"Attention gates to try, from {','.join(ATTENTION)} (see fit --attention) "
    f"[{ATTENTION[0]}].",
)
@click.option("--encoder-weights", help="ImageNet weights for the backbones (a local .h5).")
@click.option("--epochs", type=int, help="Epochs per trial [the config's].")
@click.option("--steps-per-epoch", type=int, help="Batches per epoch per trial.")
@click.option("--run-dir", type=EXISTING, required=True, help="Where the search is written.")
def tune(
    data, config_file, fmt, max_trials, budget, tuner, backbones, blocks, attention,
    encoder_weights, epochs, steps_per_epoch, run_dir,
) -> None:  # fmt: skip
    """Search learning rate, loss, batch, width, backbone, input size and augmentation.

    Each trial is scored by its validation Dice at full resolution. Rerun the same
    command to resume. Writes trials.csv, tune.png and best.yaml (for fit --config).
    """
    from unet_tf.planning import parse_duration
    from unet_tf.training.tune import SearchSpace
    from unet_tf.training.tune import tune as run_tune

    base = RunConfig.load(config_file) if config_file else RunConfig()
    override(base, "data", data=path_str(data), format=fmt, steps_per_epoch=steps_per_epoch)
    override(base, "model", encoder_weights=encoder_weights)
    override(base, "train", epochs=epochs)
    space = SearchSpace(
        backbones=tuple(comma_list(backbones)),
        blocks=tuple(comma_list(blocks)),
        attention=tuple(comma_list(attention)),
    )
    budget_seconds = parse_duration(budget) if budget else None
    result = run_tune(base, run_dir, max_trials, budget_seconds, tuner, space, log=click.echo)
    best = result.best
    click.echo(
        f"{len(result.trials)} trial(s); best: trial {best['trial']}, validation Dice "
        f"{best['val_dice']:.4f}; train it again with: unet-tf fit --config "
        f"{run_dir}/best.yaml"
    )
