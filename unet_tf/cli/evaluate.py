"""``unet-tf evaluate``: score a model on annotated images; the rules are in the library."""

from __future__ import annotations

import json

import click

from unet_tf.atomic import atomic_write_text
from unet_tf.cli.options import EXISTING, choice, inference_options, pop_inference
from unet_tf.data.formats.registry import FORMAT_CHOICES
from unet_tf.rundir import check_new_outputs, check_writable


@click.command()
@click.argument("model", type=EXISTING)
@click.option("--data", type=EXISTING, help="Annotated data (default: the bundled sample).")
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
def evaluate(model, data, fmt, mask_threshold, json_out, report_dir, overwrite, **opts) -> None:
    """Score MODEL (run dir, .keras, SavedModel, .onnx, .tflite) on annotated images.

    Images are scored at their full size; inside the field of view for DRIVE (with
    sensitivity, specificity, accuracy and AUC); with the CTC SEG measure for
    --instances and Cell Tracking Challenge data.
    """
    from unet_tf.evaluation.report import ReportWriter
    from unet_tf.evaluation.run import plan_evaluation
    from unet_tf.inference.predictor import load_predictor

    if json_out:
        check_new_outputs([json_out], "--json", overwrite)
    if report_dir:
        check_writable(report_dir, "--report")
    options, instances = pop_inference(opts)
    plan = plan_evaluation(load_predictor(model, options), data, fmt, mask_threshold, instances)
    report = ReportWriter(report_dir, plan.predictor, overwrite) if report_dir else None
    click.echo(f"evaluating {len(plan.samples)} image(s): {plan.predictor.describe()}")
    result = plan.run(on_image=report.add if report else None)
    click.echo(result.table())
    click.echo(result.histogram.describe())
    if report:
        files = report.finish(result, f"Evaluation of {model} on {plan.root}")
        click.echo(f"report written to {report_dir} ({len(files)} files)")
    if json_out:
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2))
        click.echo(f"scores written to {json_out}")
