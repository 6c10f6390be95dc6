"""``unet-tf export``: a trained model as SavedModel, ONNX or LiteRT, checked on reload."""

from __future__ import annotations

import click

from unet_tf.cli.options import EXISTING, choice
from unet_tf.export.registry import EXPORT_FORMATS


@click.command()
@click.argument("model", type=EXISTING)
@click.option(
    "--out",
    type=EXISTING,
    required=True,
    help="SavedModel folder, or NAME.onnx / NAME.tflite file to create.",
)
@click.option(
    "--format",
    "fmt",
    type=choice(EXPORT_FORMATS.names()),
    default="savedmodel",
    help="Export format [savedmodel].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export(model, out, fmt, overwrite) -> None:
    """Export MODEL as a SavedModel, ONNX or LiteRT (TFLite) model, verified on reload.

    The export is reloaded in its own runtime and compared with the Keras model; the
    largest difference is printed. predict and evaluate accept the result as MODEL.
    """
    from unet_tf.export.exporter import export_model
    from unet_tf.inference.predictor import load_predictor

    result = export_model(load_predictor(model), fmt, out, overwrite, protected=[model])
    click.echo(
        f"exported {fmt} to {out}; reloaded with {result.runtime} and checked: "
        f"max |difference| {result.max_difference:.2e}"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
