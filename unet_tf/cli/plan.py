"""``unet-tf plan``: a recipe derived from the data's fingerprint, every choice explained."""

from __future__ import annotations

import click

from unet_tf.cli.options import EXISTING, choice, path_str
from unet_tf.config import RunConfig, override
from unet_tf.data.formats.registry import FORMAT_CHOICES


@click.command()
@click.argument("data", type=EXISTING)
@click.option("--format", "fmt", type=choice(FORMAT_CHOICES), help="Dataset layout [auto].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
@click.option(
    "--budget", help="Training time on this machine, e.g. 20m or 1h30m; steps are timed here."
)
@click.option("--out", type=EXISTING, help="Write the plan as a config YAML for fit --config.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def plan(data, fmt, mask_threshold, budget, out, overwrite) -> None:
    """Fingerprint DATA and derive a complete training config, with the reason for each choice.

    fit plans by itself when given neither --size nor --patch; to keep or edit the plan,
    write it here and train with unet-tf fit --config plan.yaml (flags given to fit win).
    """
    from unet_tf.planning import parse_duration, plan_dataset
    from unet_tf.planning.recipe import plan_lines
    from unet_tf.rundir import check_new_outputs

    if out:
        check_new_outputs([out], "--out", overwrite)
    base = RunConfig()
    override(base, "data", data=path_str(data), format=fmt, mask_threshold=mask_threshold)
    result = plan_dataset(base, parse_duration(budget) if budget else None)
    for line in plan_lines(result):
        click.echo(line)
    if out:
        config = result.to_config()
        config.validate()
        config.save(out)
        click.echo(f"plan written to {out}; train with: unet-tf fit --config {out}")
