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
    help="SavedModel folder, or NAME.onnx / NAME.tflite / NAME.zip (bioimageio) file to create.",
)
@click.option(
    "--format",
    "fmt",
    type=choice(EXPORT_FORMATS.names()),
    default="savedmodel",
    help="Export format [savedmodel].",
)
@click.option(
    "--meta",
    type=EXISTING,
    default=None,
    help="bioimageio: YAML with name, description, authors, cite, license, tags, version, "
    "git_repo, covers, test_image (see docs/inference.md).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export(model, out, fmt, meta, overwrite) -> None:
    """Export MODEL as a SavedModel, ONNX, LiteRT (TFLite) model or bioimage.io package,
    verified on reload.

    The export is reloaded in its own runtime and compared with the Keras model; the
    largest difference is printed (a bioimage.io package is also validated with
    bioimageio.core). predict and evaluate accept the result as MODEL.
    """
    from unet_tf.export.exporter import export_model
    from unet_tf.inference.predictor import load_predictor

    result = export_model(load_predictor(model), fmt, out, overwrite, protected=[model], meta=meta)
    click.echo(
        f"exported {fmt} to {out}; reloaded with {result.runtime} and checked: "
        f"max |difference| {result.max_difference:.2e}"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
