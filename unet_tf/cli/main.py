"""The ``unet-tf`` command line: it parses arguments and calls the library, nothing more.

Bad input ends in one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import click

from unet_tf.atomic import atomic_write_text
from unet_tf.config import (
    ANNOTATIONS,
    FORMATS,
    INPUT_ADAPTERS,
    JIT_COMPILE,
    LOSSES,
    LR_SCHEDULES,
    PRECISIONS,
    SKIP_MERGES,
    STRATEGIES,
    RunConfig,
    override,
)
from unet_tf.data.checks import DataWarning
from unet_tf.errors import UserError, os_error_message
from unet_tf.rundir import check_output_file, check_writable
from unet_tf.runtime.quiet import silenced_stderr

CHOICE = lambda values: click.Choice(list(values))  # noqa: E731
EXISTING = click.Path(path_type=Path)


def _import_tensorflow() -> None:
    with silenced_stderr():
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
@click.option(
    "--format", "fmt", type=CHOICE(FORMATS), help="Dataset layout [auto: detected from the files]."
)
@click.option("--sequences", help="Cell Tracking Challenge: training sequences, e.g. 01 [all].")
@click.option("--val-sequences", help="Cell Tracking Challenge: validation sequences, e.g. 02.")
@click.option(
    "--annotations", type=CHOICE(ANNOTATIONS), help="CTC masks: gold, silver, or gold else silver."
)
@click.option(
    "--masks", type=EXISTING, help="Video: folder of masks named by frame index (or a TIFF stack)."
)
@click.option(
    "--border-weights/--no-border-weights",
    default=None,
    help="U-Net border weight maps (w0 10, sigma 5 px); needs --loss weighted-bce.",
)
@click.option("--size", type=int, help="Resize images to SIZE x SIZE for training [256].")
@click.option(
    "--patch", type=int, help="Train on random PATCH x PATCH crops at full resolution instead."
)
@click.option("--fg-prob", type=float, help="Chance a patch is centred on foreground [0].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
@click.option(
    "--augment", help="Comma-separated augmentations, a YAML file, or none [hflip,rotate]."
)
@click.option("--steps-per-epoch", type=int, help="Batches per epoch [one pass over the data].")
@click.option("--folds", type=int, help="k-fold cross-validation: number of folds.")
@click.option("--fold", type=int, help="k-fold cross-validation: which fold validates (0-based).")
@click.option(
    "--backbone",
    help="Encoder: none (scratch U-Net), vgg16, resnet50, inceptionresnetv2 (ImageNet, "
    "keras.applications) or sm:<name> (segmentation-models, e.g. sm:resnet34) [none].",
)
@click.option(
    "--encoder-weights",
    help="Encoder weights: imagenet (Keras download), none, or the path of a local .h5 [imagenet].",
)
@click.option(
    "--freeze/--no-freeze",
    default=None,
    help="Keep the encoder's weights fixed (BatchNorm in inference mode) [no-freeze].",
)
@click.option(
    "--freeze-epochs",
    type=int,
    help="Train K epochs with a frozen encoder, then fine-tune everything at --fine-tune-lr [0].",
)
@click.option("--fine-tune-lr", type=float, help="LR after --freeze-epochs [--lr / 10].")
@click.option(
    "--input-adapter",
    type=CHOICE(INPUT_ADAPTERS),
    help="Grey to the encoder's 3 channels: repeat, or a learnable 1x1 conv [repeat].",
)
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
@click.option("--epochs", type=int, help="Epochs [40 from scratch, 20 with a --backbone].")
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
@click.option(
    "--strategy",
    type=CHOICE(STRATEGIES),
    help="none, mirrored (this machine's GPUs) or multiworker (machines in TF_CONFIG) [auto].",
)
@click.option("--devices", help="Devices for mirrored, e.g. GPU:0,GPU:1 [all visible GPUs].")
@click.option(
    "--scale-lr/--no-scale-lr", default=None, help="Multiply --lr by the number of replicas."
)
@click.option(
    "--jit-compile", type=CHOICE(JIT_COMPILE), help="XLA: auto = on for GPU, off for CPU [auto]."
)
@click.option("--seed", type=int, help="Random seed [42].")
@click.option(
    "--threshold",
    help="Foreground is p > THRESHOLD, or auto: Dice-optimal on the validation set [0.5].",
)
@click.option("--run-dir", type=EXISTING, help="Where the run is written [runs/<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --run-dir.")
@click.option("--quiet", is_flag=True, help="No per-epoch progress lines.")
def fit(config_file, run_dir, overwrite, quiet, **opts) -> None:
    """Train a U-Net; rerun the same command to resume an interrupted run."""
    from unet_tf.training.fit import fit as run_fit

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    _override_data(cfg, opts)
    override(
        cfg,
        "data",
        val=_str(opts["val"]),
        val_split=opts["val_split"],
        steps_per_epoch=opts["steps_per_epoch"],
        folds=opts["folds"],
        fold=opts["fold"],
        val_sequences=_comma_list(opts["val_sequences"]),
        border_weights=opts["border_weights"],
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
        encoder_weights=opts["encoder_weights"],
        freeze=opts["freeze"],
        freeze_epochs=opts["freeze_epochs"],
        input_adapter=opts["input_adapter"],
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
        strategy=opts["strategy"],
        devices=_comma_list(opts["devices"]),
        scale_lr=opts["scale_lr"],
        fine_tune_lr=opts["fine_tune_lr"],
        jit_compile=opts["jit_compile"],
        seed=opts["seed"],
        threshold=_threshold(opts["threshold"]),
    )
    result = run_fit(cfg, run_dir, overwrite, verbose=0 if quiet else 2, log=click.echo)
    if not result.chief:
        click.echo(f"worker done; the chief writes the run to {result.run_dir}")
        return
    val = result.metrics["validation"]
    click.echo(f"run saved to {result.run_dir} ({result.metrics['train_seconds']} s of training)")
    if val:
        scores = "  ".join(f"{k} {v:.4f}" for k, v in val["mean"].items())
        click.echo(f"validation at full resolution: {scores}")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _threshold(value: str | None) -> float | str | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--threshold must be a number or auto, not {value!r}") from None


def _inference_options(command):
    """The options ``predict`` and ``evaluate`` share: tiling, TTA, threshold, instances."""
    from unet_tf.inference.tiling import BLENDS
    from unet_tf.inference.tta import TTA_MODES

    options = [
        click.option(
            "--tile",
            type=int,
            help="Tile side at full resolution, 0 = whole image [the training patch; "
            "models trained on resized images resize].",
        ),
        click.option("--overlap", type=float, default=0.25, help="Tile overlap fraction [0.25]."),
        click.option(
            "--blend", type=CHOICE(BLENDS), default="gaussian", help="Tile weighting [gaussian]."
        ),
        click.option("--tile-batch", type=int, default=4, help="Tiles per forward pass [4]."),
        click.option(
            "--tta",
            type=CHOICE(TTA_MODES),
            default="none",
            help="Average over flips (4 passes) or all 8 rotations/flips (d4) [none].",
        ),
        click.option(
            "--resize", is_flag=True, help="Resize images to the training size (papers' protocol)."
        ),
        click.option("--threshold", type=float, help="Foreground is p > this [the run's, 0.5]."),
        click.option(
            "--instances", is_flag=True, help="Label objects: connected components, holes filled."
        ),
        click.option(
            "--min-size", type=int, default=0, help="--instances: drop smaller objects (px) [0]."
        ),
        click.option(
            "--split-touching",
            is_flag=True,
            help="--instances: split touching objects (distance-transform watershed).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _inference(opts: dict):
    """Pop the shared inference options into InferenceOptions and InstanceOptions (or None)."""
    from unet_tf.inference.postprocess import InstanceOptions
    from unet_tf.inference.predictor import InferenceOptions

    options = InferenceOptions(
        tile=opts.pop("tile"),
        overlap=opts.pop("overlap"),
        blend=opts.pop("blend"),
        tile_batch=opts.pop("tile_batch"),
        tta=opts.pop("tta"),
        resize=opts.pop("resize"),
        threshold=opts.pop("threshold"),
    )
    instances, min_size = opts.pop("instances"), opts.pop("min_size")
    split = opts.pop("split_touching")
    if (min_size or split) and not instances:
        raise UserError("--min-size and --split-touching need --instances")
    return options, InstanceOptions(min_size, split_touching=split) if instances else None


def _override_data(cfg: RunConfig, opts: dict) -> None:
    """The data options that ``fit`` and ``augment-preview`` share."""
    from unet_tf.data.augment import parse_augment_option

    override(
        cfg,
        "data",
        data=_str(opts["data"]),
        format=opts["fmt"],
        sequences=_comma_list(opts["sequences"]),
        annotations=opts["annotations"],
        masks=_str(opts["masks"]),
        size=opts["size"],
        patch=opts["patch"],
        fg_prob=opts["fg_prob"],
        mask_threshold=opts["mask_threshold"],
        augment=None if opts["augment"] is None else parse_augment_option(opts["augment"]),
    )


@cli.command()
@click.argument("model", type=EXISTING)
@click.option("--data", type=EXISTING, help="Annotated data (default: the bundled sample).")
@click.option("--format", "fmt", default="auto", help="Dataset layout [auto].")
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
@_inference_options
def evaluate(model, data, fmt, mask_threshold, json_out, report_dir, overwrite, **opts) -> None:
    """Score MODEL (run dir, .keras, SavedModel, .onnx, .tflite) on annotated images.

    Images are scored at their full size; inside the field of view for DRIVE (with
    sensitivity, specificity, accuracy and AUC); with the CTC SEG measure for
    --instances and Cell Tracking Challenge data.
    """
    from unet_tf.data.formats.registry import detect_format, read_dataset, sample_data_dir
    from unet_tf.evaluation.report import ReportWriter
    from unet_tf.evaluation.scoring import evaluate_samples
    from unet_tf.inference.postprocess import InstanceOptions
    from unet_tf.inference.predictor import load_predictor

    if json_out:
        check_output_file(json_out, "--json", overwrite)
    if report_dir:
        check_writable(report_dir, "--report")
    options, instances = _inference(opts)
    predictor = load_predictor(model, options)
    cfg = predictor.cfg
    cfg.data.format = fmt
    # CTC: score the run's validation sequences (or all), never its training ones.
    cfg.data.sequences, cfg.data.val_sequences = cfg.data.val_sequences, None
    if mask_threshold is not None:
        cfg.data.mask_threshold = mask_threshold
    root = data or sample_data_dir()
    samples = read_dataset(_str(data), cfg.data)
    report = ReportWriter(report_dir, predictor, overwrite) if report_dir else None
    if instances is None and (fmt if fmt != "auto" else detect_format(root)) == "ctc":
        instances = InstanceOptions()  # the CTC's own measure is SEG
    click.echo(f"evaluating {len(samples)} image(s): {predictor.describe()}")
    result = evaluate_samples(
        predictor, samples, cfg, on_image=report.add if report else None, instances=instances
    )
    click.echo(result.table())
    click.echo(result.histogram.describe())
    if report:
        files = report.finish(result, f"Evaluation of {model} on {root}")
        click.echo(f"report written to {report_dir} ({len(files)} files)")
    if json_out:
        atomic_write_text(json_out, json.dumps(result.to_json(), indent=2))
        click.echo(f"scores written to {json_out}")


@cli.command()
@click.argument("model", type=EXISTING)
@click.argument("inputs", nargs=-1, required=True, type=EXISTING)
@click.option("--out", type=EXISTING, required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@_inference_options
def predict(model, inputs, out, overwrite, **opts) -> None:
    """Segment INPUTS (images, folders or videos): mask, probability map and overlay.

    A video (avi, mp4, multi-page TIFF) gives a mask video, an overlay video and a CSV
    of per-frame foreground area and object count.
    """
    import numpy as np

    from unet_tf.data.pipeline import make_target
    from unet_tf.evaluation.scoring import image_confusion
    from unet_tf.inference.postprocess import label_instances
    from unet_tf.inference.predictor import load_predictor, to_mask
    from unet_tf.inference.video import predict_video, split_videos
    from unet_tf.inference.writers import (
        check_free,
        collect_inputs,
        write_instances,
        write_prediction,
    )

    check_writable(out, "--out")
    options, instances = _inference(opts)
    predictor = load_predictor(model, options)
    videos, inputs = split_videos(list(inputs))
    for video in videos:
        written = predict_video(predictor, video, out, overwrite)
        click.echo(f"{video.name}: wrote {', '.join(p.name for p in written.values())}")
    if not inputs:
        return
    samples = collect_inputs(inputs)
    classes = predictor.cfg.model.num_classes
    check_free(out, samples, classes, overwrite, instances is not None)
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
        if instances is not None:
            labels = label_instances(pred > 0, instances)
            write_instances(out, sample.name, labels)
            line += f", {int(labels.max())} objects"
        click.echo(line)
    click.echo(f"wrote {len(samples)} prediction(s) to {out}")


@cli.command()
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
    type=CHOICE(["savedmodel", "onnx", "litert"]),
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


@cli.command()
@click.option("--strategy", type=CHOICE(STRATEGIES), default="auto", help="As for fit [auto].")
@click.option("--devices", help="As for fit, e.g. GPU:0,GPU:1.")
@click.option("--precision", type=CHOICE(PRECISIONS), default="auto", help="As for fit [auto].")
@click.option("--jit-compile", type=CHOICE(JIT_COMPILE), default="auto", help="As for fit [auto].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(strategy, devices, precision, jit_compile, as_json) -> None:
    """Versions, devices, and the precision, XLA and strategy fit would use here."""
    from unet_tf.runtime.info import environment_report, format_report

    report = environment_report(strategy, _comma_list(devices), precision, jit_compile)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@cli.command("augment-preview")
@click.option("--config", "config_file", type=EXISTING, help="Take the data settings of a run.")
@click.option("--data", type=EXISTING, help="Data as for fit (default: the bundled sample).")
@click.option("--format", "fmt", type=CHOICE(FORMATS), help="Dataset layout [auto].")
@click.option("--sequences", help="Cell Tracking Challenge sequences, e.g. 01 [all].")
@click.option("--annotations", type=CHOICE(ANNOTATIONS), help="CTC masks [gt+st].")
@click.option("--masks", type=EXISTING, help="Video: folder of masks named by frame index.")
@click.option("--size", type=int, help="Resize to SIZE x SIZE [256].")
@click.option("--patch", type=int, help="Or show random PATCH x PATCH crops.")
@click.option("--fg-prob", type=float, help="Chance a patch is centred on foreground [0].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
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
    _override_data(cfg, opts)
    override(cfg, "train", seed=seed)
    click.echo(f"wrote {write_preview(cfg, out, rows, cols, overwrite)}")


@contextlib.contextmanager
def _data_warnings_as_lines() -> Iterator[None]:
    """Print each distinct :class:`DataWarning` once, as one ``warning:`` line on stderr.

    Python's own format adds the file and line of the library code that warned,
    which means nothing to a user; other warnings keep that format.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default", DataWarning)
        show = warnings.showwarning

        def show_line(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, DataWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_line
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning bad input into one line and exit code 2."""
    try:
        with _data_warnings_as_lines():
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
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
