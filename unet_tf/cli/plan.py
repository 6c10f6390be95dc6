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

    Train with it: unet-tf fit --config plan.yaml (flags given to fit still win).
    """
    from unet_tf.planning import parse_duration, plan_dataset
    from unet_tf.rundir import check_new_outputs

    if out:
        check_new_outputs([out], "--out", overwrite)
    base = RunConfig()
    override(base, "data", data=path_str(data), format=fmt, mask_threshold=mask_threshold)
    result = plan_dataset(base, parse_duration(budget) if budget else None)
    fp = result.fingerprint
    click.echo(
        f"{fp.images} image(s), median {fp.median_width}x{fp.median_height} px, "
        f"{fp.channels} channel(s), {fp.bit_depth}-bit; foreground "
        f"{100 * fp.foreground_fraction:.1f}%; {fp.object_count} object(s) per image of "
        f"~{fp.object_diameter:.0f} px; thin-structure score {fp.thin_score:.2f}"
        f"{'; a time series' if fp.time_series else ''}"
    )
    for setting, reason in result.reasons.items():
        click.echo(f"  {setting:<13} {reason}")
    if out:
        config = result.to_config()
        config.validate()
        config.save(out)
        click.echo(f"plan written to {out}; train with: unet-tf fit --config {out}")
