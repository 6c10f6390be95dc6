"""``unet-tf augment-preview``: look at training samples before spending hours on them."""

from __future__ import annotations

import click

from unet_tf.cli.options import EXISTING, channels_option, choice, override_data
from unet_tf.config import ANNOTATIONS, RunConfig, override
from unet_tf.data.formats.registry import FORMAT_CHOICES


@click.command("augment-preview")
@click.option("--config", "config_file", type=EXISTING, help="Take the data settings of a run.")
@click.option("--data", type=EXISTING, help="Data as for fit (default: the bundled sample).")
@click.option("--format", "fmt", type=choice(FORMAT_CHOICES), help="Dataset layout [auto].")
@click.option("--sequences", help="Cell Tracking Challenge sequences, e.g. 01 [all].")
@click.option("--annotations", type=choice(ANNOTATIONS), help="CTC masks [gt+st].")
@click.option("--masks", type=EXISTING, help="Video: folder of masks named by frame index.")
@click.option("--size", type=int, help="Resize to SIZE x SIZE [256].")
@click.option("--patch", type=int, help="Or show random PATCH x PATCH crops.")
@click.option("--fg-prob", type=float, help="Chance a patch is centred on foreground [0].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
@channels_option
@click.option("--augment", help="Augmentations as for fit: names, a YAML file, or none.")
@click.option("--rows", type=int, default=4, help="Images (rows) [4].")
@click.option("--cols", type=int, default=6, help="Columns: the prepared image + draws [6].")
@click.option("--seed", type=int, help="Random seed [42].")
@click.option("--out", type=EXISTING, required=True, help="PNG file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def augment_preview(config_file, rows, cols, seed, out, overwrite, **opts) -> None:
    """Write a grid PNG of training samples as the network sees them (mask outlined)."""
    from unet_tf.data.preview import write_preview

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    override_data(cfg, opts)
    override(cfg, "train", seed=seed)
    click.echo(f"wrote {write_preview(cfg, out, rows, cols, overwrite)}")
