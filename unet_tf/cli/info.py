"""``unet-tf info``: what this machine offers and what ``fit`` would use on it."""

from __future__ import annotations

import json

import click

from unet_tf.cli.options import choice, comma_list
from unet_tf.config import JIT_COMPILE, PRECISIONS, STRATEGIES


@click.command()
@click.option("--strategy", type=choice(STRATEGIES), default="auto", help="As for fit [auto].")
@click.option("--devices", help="As for fit, e.g. GPU:0,GPU:1.")
@click.option("--precision", type=choice(PRECISIONS), default="auto", help="As for fit [auto].")
@click.option("--jit-compile", type=choice(JIT_COMPILE), default="auto", help="As for fit [auto].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(strategy, devices, precision, jit_compile, as_json) -> None:
    """Versions, devices, and the precision, XLA and strategy fit would use here."""
    from unet_tf.runtime.info import environment_report, format_report

    report = environment_report(strategy, comma_list(devices), precision, jit_compile)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
