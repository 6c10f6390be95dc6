"""``unet-tf fit``: train a U-Net (or resume one) from flags and an optional config file."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from unet_tf.cli.options import (
    EXISTING,
    channels_option,
    choice,
    comma_list,
    override_data,
    parse_threshold,
    path_str,
)
from unet_tf.config import (
    ANNOTATIONS,
    BLOCKS,
    INPUT_ADAPTERS,
    JIT_COMPILE,
    LR_SCHEDULES,
    PRECISIONS,
    SKIP_MERGES,
    SPLITS,
    STRATEGIES,
    TARGET_AUTO,
    RunConfig,
    override,
)
from unet_tf.data.formats.registry import FORMAT_CHOICES
from unet_tf.data.targets import INSTANCE_DEFAULT, SMALL_OBJECT_TARGET, SMALL_OBJECTS, TARGETS
from unet_tf.training.losses import LOSSES

# "boundary 2, contact 4": the registry's band widths, for --border-width's help
BANDS = ", ".join(f"{n} {TARGETS.get(n).band}" for n in TARGETS.names() if TARGETS.get(n).band)


def keras_verbosity(quiet: bool) -> int:
    """Keras ``verbose``: 0 quiet, 1 a live bar per epoch on a terminal, 2 one line per epoch.

    A live bar in a log file or CI output is thousands of carriage returns, so it is
    shown only when stdout, where Keras writes it, is a terminal and CI is not set
    (:func:`unet_tf.runtime.progress.wanted`).
    """
    import sys

    from unet_tf.runtime.progress import wanted

    if quiet:
        return 0
    return 1 if wanted(stream=sys.stdout) else 2


@click.command()
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
    "--format",
    "fmt",
    type=choice(FORMAT_CHOICES),
    help="Dataset layout [auto: detected from the files].",
)
@click.option("--sequences", help="Cell Tracking Challenge: training sequences, e.g. 01 [all].")
@click.option("--val-sequences", help="Cell Tracking Challenge: validation sequences, e.g. 02.")
@click.option(
    "--annotations", type=choice(ANNOTATIONS), help="CTC masks: gold, silver, or gold else silver."
)
@click.option(
    "--masks", type=EXISTING, help="Video: folder of masks named by frame index (or a TIFF stack)."
)
@click.option(
    "--border-weights/--no-border-weights",
    default=None,
    help="U-Net border weight maps (w0 10, sigma 5 px); needs --loss weighted-bce.",
)
@click.option(
    "--target",
    type=choice((TARGET_AUTO, *TARGETS.names())),
    help="What the network learns: binary (foreground), boundary (background, interior "
    "and cell border), distance (foreground and each cell's distance map) or contact "
    "(distance's, and where cells touch); the last three separate touching cells "
    f"[auto: {INSTANCE_DEFAULT} for instance masks, {SMALL_OBJECT_TARGET} when the plan "
    f"measures their objects under {SMALL_OBJECTS:.0f} px, else binary].",
)
@click.option(
    "--border-width",
    type=int,
    help="Cell-border band of --target boundary, contact band of --target contact, in px "
    f"[the target's: {BANDS}].",
)
@click.option(
    "--size",
    type=int,
    help="Resize images to SIZE x SIZE for training [planned from the data without --size "
    "or --patch; 256 with --no-plan].",
)
@click.option(
    "--patch", type=int, help="Train on random PATCH x PATCH crops at full resolution instead."
)
@click.option(
    "--object-size",
    type=float,
    help="Rescale each image so its objects' median diameter is this many px, in training "
    "and in prediction (Cellpose-like; for objects whose size varies between images). "
    "Needs patch training [off].",
)
@click.option("--fg-prob", type=float, help="Chance a patch is centred on foreground [0].")
@click.option("--mask-threshold", type=float, help="Foreground is mask value > this [0].")
@channels_option
@click.option(
    "--augment", help="Comma-separated augmentations, a YAML file, or none [hflip,rotate]."
)
@click.option("--steps-per-epoch", type=int, help="Batches per epoch [one pass over the data].")
@click.option(
    "--split",
    type=choice(SPLITS),
    help="Validation hold-out: random, or blocked (a block of frames) [auto: blocked for "
    "CTC and video frames, random otherwise, with a warning if a folder looks like frames].",
)
@click.option(
    "--split-gap",
    type=int,
    help="Blocked split: annotated frames left out on each side of the validation block [3].",
)
@click.option("--folds", type=int, help="k-fold cross-validation: number of folds.")
@click.option("--fold", type=int, help="k-fold cross-validation: which fold validates (0-based).")
@click.option(
    "--all-folds",
    is_flag=True,
    help="Train every fold into RUN/fold_k/ and predict with their ensemble (needs --folds).",
)
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
    type=choice(INPUT_ADAPTERS),
    help="Grey to the encoder's 3 channels: repeat, or a learnable 1x1 conv [repeat].",
)
@click.option("--depth", type=int, help="Pooling steps [adapts to the input, at most 4].")
@click.option(
    "--base-filters", type=int, help="Filters of the first level, doubling per level [32]."
)
@click.option(
    "--skip-merge",
    type=choice(SKIP_MERGES),
    help="Reconcile skip sizes by resize, crop or pad [resize].",
)
@click.option(
    "--block",
    type=choice(BLOCKS),
    help="A level's two convolutions: plain (the 2015 U-Net), or residual, with a "
    "shortcut around them (with a --backbone, in the decoder) [plain].",
)
@click.option(
    "--attention/--no-attention",
    default=None,
    help="Attention gates: each skip weighed per pixel by the coarser decoder features "
    "before it is joined (Attention U-Net) [off].",
)
@click.option("--dropout", type=float, help="Dropout at the end of the contracting path [0].")
@click.option("--classes", "num_classes", type=int, help="Output classes: 1 = binary sigmoid [1].")
@click.option(
    "--epochs",
    type=int,
    help="Epochs [the plan's; 40 from scratch, 20 with a --backbone; --budget decides them].",
)
@click.option(
    "--budget",
    help="Train for this wall-clock time, e.g. 20m or 1h30m: the LR schedule is laid over "
    "the time and training stops when it is spent; steps timed here set the epochs.",
)
@click.option(
    "--no-plan",
    is_flag=True,
    help="The fixed defaults instead of the plan derived from the data (which fit uses "
    "when neither --size nor --patch is given).",
)
@click.option("--batch-size", type=int, help="Batch size [4].")
@click.option("--lr", type=float, help="Adam learning rate [1e-3].")
@click.option(
    "--lr-schedule",
    type=choice(LR_SCHEDULES),
    help="step = x0.75 at 50%/75% of epochs (of the time with --budget) [step].",
)
@click.option("--loss", type=choice(LOSSES.names()), help="Loss function [dice-focal].")
@click.option("--focal-alpha", type=float, help="Focal loss foreground weight [0.8].")
@click.option(
    "--focal-gamma", type=float, help="Focal loss gamma [2 for focal, 0.9 for dice-focal]."
)
@click.option(
    "--logdice-weight",
    type=float,
    help="alpha in focal-logdice's alpha * focal - log(Dice) [1].",
)
@click.option("--precision", type=choice(PRECISIONS), help="Numeric precision [auto].")
@click.option(
    "--strategy",
    type=choice(STRATEGIES),
    help="none, mirrored (this machine's GPUs) or multiworker (machines in TF_CONFIG) [auto].",
)
@click.option("--devices", help="Devices for mirrored, e.g. GPU:0,GPU:1 [all visible GPUs].")
@click.option(
    "--scale-lr/--no-scale-lr", default=None, help="Multiply --lr by the number of replicas."
)
@click.option(
    "--jit-compile", type=choice(JIT_COMPILE), help="XLA: auto = on for GPU, off for CPU [auto]."
)
@click.option("--seed", type=int, help="Random seed [42].")
@click.option(
    "--threshold",
    help="Foreground is p > THRESHOLD, or auto: Dice-optimal on the validation set "
    "[the plan's: auto for binary masks; 0.5 with --no-plan].",
)
@click.option("--run-dir", type=EXISTING, help="Where the run is written [runs/<timestamp>].")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --run-dir.")
@click.option("--quiet", is_flag=True, help="No per-epoch progress lines.")
def fit(config_file, run_dir, overwrite, quiet, all_folds, no_plan, budget, **opts) -> None:
    """Train a U-Net; rerun the same command to resume an interrupted run.

    Without --size or --patch the recipe is planned from the data (as unet-tf plan
    does); every option given here wins over the plan.
    """
    from unet_tf.planning import parse_duration
    from unet_tf.planning.recipe import fit_config
    from unet_tf.training.fit import fit as run_fit

    cfg = RunConfig.load(config_file) if config_file else RunConfig()
    explicit = given_settings(click.get_current_context(), config_file)
    override_data(cfg, opts)
    override(
        cfg,
        "data",
        val=path_str(opts["val"]),
        val_split=opts["val_split"],
        steps_per_epoch=opts["steps_per_epoch"],
        split=opts["split"],
        split_gap=opts["split_gap"],
        folds=opts["folds"],
        fold=opts["fold"],
        val_sequences=comma_list(opts["val_sequences"]),
        border_weights=opts["border_weights"],
        target=opts["target"],
        border_width=opts["border_width"],
        object_size=opts["object_size"],
    )
    override(
        cfg,
        "model",
        backbone=opts["backbone"],
        depth=opts["depth"],
        base_filters=opts["base_filters"],
        skip_merge=opts["skip_merge"],
        block=opts["block"],
        attention=opts["attention"],
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
        logdice_weight=opts["logdice_weight"],
        precision=opts["precision"],
        strategy=opts["strategy"],
        devices=comma_list(opts["devices"]),
        scale_lr=opts["scale_lr"],
        fine_tune_lr=opts["fine_tune_lr"],
        jit_compile=opts["jit_compile"],
        seed=opts["seed"],
        threshold=parse_threshold(opts["threshold"]),
        budget_seconds=parse_duration(budget) if budget else None,
    )
    cfg = fit_config(
        cfg,
        explicit,
        plan=not no_plan,
        run_dir=run_dir,
        overwrite=overwrite,
        log=click.echo,
        all_folds=all_folds,
    )
    if all_folds:
        from unet_tf.rundir import default_run_dir
        from unet_tf.training.folds import fit_folds

        ensemble = fit_folds(
            cfg,
            run_dir or default_run_dir(),
            cfg.data.folds,
            overwrite,
            verbose=keras_verbosity(quiet),
            log=click.echo,
        )
        scores = ", ".join(
            f"{k} {v:.4f}" for k, v in ensemble.out_of_fold.items() if k != "out_of_fold_images"
        )
        chosen = ""
        if ensemble.postprocess:
            setting = ensemble.postprocess["parameter"]
            chosen = f" and {setting} {ensemble.postprocess[setting]:g}"
        click.echo(
            f"ensemble of {len(ensemble.folds)} folds saved to {ensemble.run_dir}; threshold "
            f"{ensemble.threshold:g}{chosen} from out-of-fold predictions ({scores})"
        )
        return
    result = run_fit(cfg, run_dir, overwrite, verbose=keras_verbosity(quiet), log=click.echo)
    if not result.chief:
        click.echo(f"worker done; the chief writes the run to {result.run_dir}")
        return
    metrics = result.metrics
    click.echo(f"run saved to {result.run_dir} ({metrics['train_seconds']} s of training)")
    for line in validation_lines(metrics):
        click.echo(line)


# fit's options named differently from the config fields they set
OPTION_FIELDS = {"fmt": "format", "budget": "budget_seconds"}


def given_settings(ctx: click.Context, config_file: Path | None) -> set[str]:
    """The settings the user gave, as ``"section.field"``: keys of --config, flags given.

    A flag counts when click took its value from the command line or the environment
    (its ``ParameterSource``), not from a default, so ``--batch-size 4`` wins over the
    plan even though 4 is also the fixed default.
    """
    import yaml

    from unet_tf.planning.recipe import setting_path

    given = set()
    if config_file:  # RunConfig.load has checked the file; here only its keys count
        raw = yaml.safe_load(Path(config_file).read_text()) or {}
        given |= {
            f"{s}.{key}" for s, values in raw.items() if isinstance(values, dict) for key in values
        }
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            path = setting_path(OPTION_FIELDS.get(param.name, param.name))
            if path:
                given.add(path)
    return given


def validation_lines(metrics: dict) -> list[str]:
    """The validation scores, each line naming its threshold and, if chosen, how."""

    def scores(summary: dict) -> str:
        return "  ".join(f"{k} {v:.4f}" for k, v in summary["mean"].items())

    if not metrics["validation"]:
        return []
    lines = [
        f"validation at full resolution, threshold {metrics['validation_threshold']:g}: "
        f"{scores(metrics['validation'])}"
    ]
    if "threshold_choice" in metrics:
        chosen = metrics["validation_at_chosen_threshold"]
        what = (
            scores(chosen)
            if chosen
            else "not scored (cross-fitting needs at least 2 validation images)"
        )
        lines.append(
            f"validation at full resolution, chosen threshold {metrics['threshold']:g} "
            f"(cross-fitted: each half scored at the threshold chosen on the other): {what}"
        )
    return lines
