"""``unet-tf evaluate``: score a model on annotated images; the rules are in the library."""

from __future__ import annotations

import json

import click

from unet_tf.atomic import atomic_write_text
from unet_tf.cli.options import (
    EXISTING,
    channels_option,
    choice,
    inference_options,
    parse_channels,
    pop_inference,
    quiet_option,
    start_progress,
)
from unet_tf.data.formats.registry import FORMAT_CHOICES
from unet_tf.data.splits import SUBSETS
from unet_tf.rundir import check_new_outputs, check_writable


@click.command()
@click.argument("model", type=EXISTING)
@click.option(
    "--data",
    type=EXISTING,
    help="Annotated data [the data the run trained on, its validation images].",
)
@click.option(
    "--subset",
    type=choice(SUBSETS),
    help="Of the run's own data: val, train or all [val; all of another --data].",
)
@click.option(
    "--format", "fmt", type=choice(FORMAT_CHOICES), default="auto", help="Dataset layout [auto]."
)
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [as trained].")
@click.option("--json", "json_out", type=EXISTING, help="Also write the scores as JSON.")
@click.option(
    "--report",
    "report_dir",
    type=EXISTING,
    metavar="DIR",
    help="Write tables, panels and figures to DIR.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file or report.")
@inference_options
@channels_option
@quiet_option
def evaluate(
    model,
    data,
    subset,
    fmt,
    mask_threshold,
    json_out,
    report_dir,
    overwrite,
    channels,
    quiet,
    **opts,
) -> None:
    """Score MODEL (run dir, .keras, SavedModel, .onnx, .tflite) on annotated images.

    Without --data, the run's validation images are scored (never its training ones
    unless --subset says so); a warning names scored images the model was trained on.

    Images are scored at their full size; inside the field of view for DRIVE (with
    sensitivity, specificity, accuracy and AUC); with the CTC SEG measure for
    --instances and Cell Tracking Challenge data.
    """
    from unet_tf.evaluation.report import ReportWriter
    from unet_tf.evaluation.run import plan_evaluation
    from unet_tf.inference.predictor import load_predictor
    from unet_tf.inference.writers import with_channels

    if json_out:
        check_new_outputs([json_out], "--json", overwrite)
    if report_dir:
        check_writable(report_dir, "--report")
    options, instances = pop_inference(opts)
    start_progress(quiet)
    predictor = with_channels(load_predictor(model, options), parse_channels(channels))
    plan = plan_evaluation(predictor, data, fmt, mask_threshold, instances, subset, model)
    report = ReportWriter(report_dir, plan.predictor, overwrite) if report_dir else None
    click.echo(
        f"evaluating {len(plan.samples)} {plan.subset} image(s) of {plan.root}: "
        f"{plan.predictor.describe()}"
    )
    result = plan.run(on_image=report.add if report else None)
    click.echo(result.table())
    click.echo(result.histogram.describe())
    if report:
        files = report.finish(result, f"Evaluation of {model} on {plan.root}", plan.provenance)
        click.echo(f"report written to {report_dir} ({len(files)} files)")
    if json_out:
        atomic_write_text(json_out, json.dumps(result.to_json(plan.provenance), indent=2))
        click.echo(f"scores written to {json_out}")
