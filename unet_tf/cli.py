"""The ``unet-tf`` command line: it parses arguments and calls the library, nothing more.

Bad input ends in one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from unet_tf.config import LOSSES, LR_SCHEDULES, PRECISIONS, SKIP_MERGES, RunConfig, override
from unet_tf.errors import UserError

CHOICE = lambda values: click.Choice(list(values))  # noqa: E731
EXISTING = click.Path(path_type=Path)


@contextlib.contextmanager
def _stderr_silenced():
    """Hide TensorFlow's C++ start-up banners, which no environment variable silences."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def _import_tensorflow() -> None:
    with _stderr_silenced():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


def _comma_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="unet-tf")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """U-Nets for 2-D biomedical image segmentation (Keras 3 / TensorFlow)."""
    if ctx.invoked_subcommand and "--help" not in sys.argv and "-h" not in sys.argv:
        _import_tensorflow()


@cli.command()
@click.option(
    "--config",
    "config_file",
    type=EXISTING,
    help="Start from a saved config.yaml (flags override it).",
)
@click.option(
    "--data", type=EXISTING, help="Training data folder (default: the bundled ISBI 2012 sample)."
)
@click.option("--val", type=EXISTING, help="Validation data folder (default: split off --data).")
@click.option("--val-split", type=float, help="Fraction held out for validation [0.2].")
@click.option("--format", "fmt", help="Dataset layout: auto (default) or folder.")
@click.option("--size", type=int, help="Resize images to SIZE x SIZE for training [256].")
@click.option(
    "--patch", type=int, help="Train on random PATCH x PATCH crops at full resolution instead."
)
@click.option("--fg-prob", type=float, help="Chance a patch is centred on foreground [0].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
@click.option("--augment", help="Comma-separated augmentations, or none [hflip,rotate].")
@click.option("--steps-per-epoch", type=int, help="Batches per epoch [one pass over the data].")
@click.option("--folds", type=int, help="k-fold cross-validation: number of folds.")
@click.option("--fold", type=int, help="k-fold cross-validation: which fold validates (0-based).")
@click.option("--backbone", help="Encoder: none (scratch U-Net) [none].")
@click.option("--depth", type=int, help="Pooling steps [adapts to the input, at most 4].")
@click.option(
    "--base-filters", type=int, help="Filters of the first level, doubling per level [32]."
)
@click.option(
    "--skip-merge",
    type=CHOICE(SKIP_MERGES),
    help="Reconcile skip sizes by resize, crop or pad [resize].",
)
@click.option("--dropout", type=float, help="Dropout at the end of the contracting path [0].")
@click.option("--classes", "num_classes", type=int, help="Output classes: 1 = binary sigmoid [1].")
@click.option("--epochs", type=int, help="Epochs [40 from scratch].")
@click.option("--batch-size", type=int, help="Batch size [4].")
@click.option("--lr", type=float, help="Adam learning rate [1e-3].")
@click.option(
    "--lr-schedule", type=CHOICE(LR_SCHEDULES), help="step = x0.75 at 50%/75% of epochs [step]."
)
@click.option("--loss", type=CHOICE(LOSSES), help="Loss function [dice-focal].")
@click.option("--focal-alpha", type=float, help="Focal loss foreground weight [0.8].")
@click.option(
    "--focal-gamma", type=float, help="Focal loss gamma [2 for focal, 0.9 for dice-focal]."
)
@click.option("--precision", type=CHOICE(PRECISIONS), help="Numeric precision [auto].")
@click.option("--seed", type=int, help="Random seed [42].")
@click.option("--run-dir", type=EXISTING, help="Where the run is written [runs/<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --run-dir.")
@click.option("--quiet", is_flag=True, help="No per-epoch progress lines.")
def fit(config_file, run_dir, overwrite, quiet, **opts) -> None:
    """Train a U-Net; rerun the same command to resume an interrupted run."""
    from unet_tf.training import fit as run_fit

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    override(
        cfg,
        "data",
        data=_str(opts["data"]),
        val=_str(opts["val"]),
        val_split=opts["val_split"],
        format=opts["fmt"],
        size=opts["size"],
        patch=opts["patch"],
        fg_prob=opts["fg_prob"],
        mask_threshold=opts["mask_threshold"],
        augment=_comma_list(opts["augment"]),
        steps_per_epoch=opts["steps_per_epoch"],
        folds=opts["folds"],
        fold=opts["fold"],
    )
    override(
        cfg,
        "model",
        backbone=opts["backbone"],
        depth=opts["depth"],
        base_filters=opts["base_filters"],
        skip_merge=opts["skip_merge"],
        dropout=opts["dropout"],
        num_classes=opts["num_classes"],
    )
    override(
        cfg,
        "train",
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        lr=opts["lr"],
        lr_schedule=opts["lr_schedule"],
        loss=opts["loss"],
        focal_alpha=opts["focal_alpha"],
        focal_gamma=opts["focal_gamma"],
        precision=opts["precision"],
        seed=opts["seed"],
    )
    result = run_fit(cfg, run_dir, overwrite, verbose=0 if quiet else 2, log=click.echo)
    val = result.metrics["validation"]
    click.echo(f"run saved to {result.run_dir} ({result.metrics['train_seconds']} s of training)")
    if val:
        m = val["mean"]
        click.echo(
            f"validation at full resolution: Dice {m['dice']:.4f}  IoU {m['iou']:.4f}  "
            f"precision {m['precision']:.4f}  recall {m['recall']:.4f}"
        )


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


@cli.command()
@click.argument("model", type=EXISTING)
@click.option("--data", type=EXISTING, help="Annotated data (default: the bundled sample).")
@click.option("--format", "fmt", default="auto", help="Dataset layout [auto].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [as trained].")
@click.option("--json", "json_out", type=EXISTING, help="Also write the scores as JSON.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json file.")
def evaluate(model, data, fmt, mask_threshold, json_out, overwrite) -> None:
    """Score MODEL (run dir, .keras or SavedModel) on annotated images at full size."""
    from unet_tf.data.formats import read_dataset
    from unet_tf.evaluation import evaluate_samples
    from unet_tf.inference import load_predictor

    if json_out and json_out.exists() and not overwrite:
        raise UserError(f"{json_out} already exists; pass --overwrite or choose another --json")
    predictor = load_predictor(model)
    cfg = predictor.cfg
    cfg.data.format = fmt
    if mask_threshold is not None:
        cfg.data.mask_threshold = mask_threshold
    samples = read_dataset(_str(data), cfg.data)
    result = evaluate_samples(predictor, samples, cfg)
    click.echo(result.table())
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2))
        click.echo(f"scores written to {json_out}")


@cli.command()
@click.argument("model", type=EXISTING)
@click.argument("inputs", nargs=-1, required=True, type=EXISTING)
@click.option("--out", type=EXISTING, required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def predict(model, inputs, out, overwrite) -> None:
    """Segment INPUTS (images or folders): mask, probability map and overlay per image."""
    import numpy as np

    from unet_tf.data.pipeline import make_target
    from unet_tf.evaluation import image_confusion
    from unet_tf.inference import load_predictor, to_mask
    from unet_tf.predict_files import check_free, collect_inputs, write_prediction

    predictor = load_predictor(model)
    samples = collect_inputs(list(inputs))
    classes = predictor.cfg.model.num_classes
    check_free(out, samples, classes, overwrite)
    for sample in samples:
        probs = predictor.predict(sample.image, sample.path)
        pred = to_mask(probs, predictor.threshold)
        truth = None
        line = f"{sample.name}: {int(np.count_nonzero(pred))} foreground px"
        if sample.mask is not None:
            target = make_target(
                sample.mask, classes, predictor.cfg.data.mask_threshold, sample.path
            )
            truth = to_mask(target, 0.5)
            scores = image_confusion(pred, truth, classes).scores()
            line += f", Dice {scores['dice']:.4f}, IoU {scores['iou']:.4f}"
        write_prediction(out, sample, probs, predictor, truth)
        click.echo(line)
    click.echo(f"wrote {len(samples)} prediction(s) to {out}")


@cli.command()
@click.argument("model", type=EXISTING)
@click.option("--out", type=EXISTING, required=True, help="SavedModel folder to create.")
@click.option(
    "--format", "fmt", type=CHOICE(["savedmodel"]), default="savedmodel", help="Export format."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export(model, out, fmt, overwrite) -> None:
    """Export MODEL as a SavedModel that serves raw images of any size."""
    from unet_tf.export import export_savedmodel
    from unet_tf.inference import load_predictor

    worst = export_savedmodel(load_predictor(model), out, overwrite)
    click.echo(f"exported {fmt} to {out}; reloaded and checked: max |difference| {worst:.2e}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning bad input into one line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="unet-tf", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
