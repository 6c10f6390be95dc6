"""``unet-tf predict``: segment images, folders and videos into files."""

from __future__ import annotations

import click

from unet_tf.cli.options import (
    EXISTING,
    channels_option,
    inference_options,
    parse_channels,
    pop_inference,
    quiet_option,
    start_progress,
)
from unet_tf.rundir import check_writable


@click.command()
@click.argument("model", type=EXISTING)
@click.argument("inputs", nargs=-1, required=True, type=EXISTING)
@click.option("--out", type=EXISTING, required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@inference_options
@channels_option
@quiet_option
def predict(model, inputs, out, overwrite, channels, quiet, **opts) -> None:
    """Segment INPUTS (images, folders or videos): mask, probability map and overlay.

    A video (avi, mp4, multi-page TIFF) gives a mask video, an overlay video and a CSV
    of per-frame foreground area and object count. --instances also writes, per image,
    a label TIFF, an ImageJ ROI zip and a CSV of per-object measurements.
    """
    from unet_tf.evaluation.scoring import describe_prediction
    from unet_tf.inference.predictor import load_predictor
    from unet_tf.inference.video import predict_video, split_videos
    from unet_tf.inference.writers import collect_inputs, predict_to_files, with_channels

    check_writable(out, "--out")
    options, instances = pop_inference(opts)
    start_progress(quiet)
    predictor = with_channels(load_predictor(model, options), parse_channels(channels))
    videos, images = split_videos(list(inputs))
    for video in videos:
        written = predict_video(predictor, video, out, overwrite, instances)
        click.echo(f"{video.name}: wrote {', '.join(p.name for p in written.values())}")
    if not images:
        return
    samples = collect_inputs(images, predictor.cfg.data.channels)
    for prediction in predict_to_files(predictor, samples, out, overwrite, instances):
        click.echo(describe_prediction(prediction))
    click.echo(f"wrote {len(samples)} prediction(s) to {out}")
