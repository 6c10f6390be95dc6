"""What several commands parse alike: option types, small value parsers, shared options.

Kept apart from the commands so that each command module only declares its own options
and every shared option has one spelling, default and help text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from unet_tf.config import RunConfig, override
from unet_tf.errors import UserError

if TYPE_CHECKING:
    from unet_tf.inference.postprocess import InstanceOptions
    from unet_tf.inference.predictor import InferenceOptions

F = TypeVar("F", bound=Callable)

# A path the command checks itself, so that a missing one is a one-line UserError.
EXISTING = click.Path(path_type=Path)


def choice(values: Iterable[str]) -> click.Choice:
    """A ``click.Choice`` of a registry's or a config tuple's names."""
    return click.Choice(list(values))


def comma_list(value: str | None) -> list[str] | None:
    """``"a, b,"`` -> ``["a", "b"]``; None (option not given) stays None."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def path_str(path: Path | None) -> str | None:
    """Config files store paths as strings."""
    return None if path is None else str(path)


def parse_threshold(value: str | None) -> float | str | None:
    """``fit --threshold``: a probability, or ``auto`` to pick it on the validation set."""
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--threshold must be a number or auto, not {value!r}") from None


def parse_channels(value: str | None) -> list[int] | None:
    """``--channels 0,2`` -> ``[0, 2]``: image channels counted from 0; None keeps them all."""
    if value is None:
        return None
    try:
        channels = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        channels = []
    if not channels or min(channels) < 0 or len(set(channels)) != len(channels):
        raise UserError(
            f"--channels must list distinct channel numbers counted from 0, e.g. 0,2, not {value!r}"
        )
    return channels


def channels_option(command: F) -> F:
    """``--channels``, shared by fit, augment-preview, predict and evaluate."""
    return click.option(
        "--channels",
        help="Image channels to use, counted from 0, e.g. 0,2 [all; predict and evaluate: "
        "the run's].",
    )(command)


def quiet_option(command: F) -> F:
    """``--quiet`` of predict and evaluate: no progress bars."""
    return click.option(
        "--quiet",
        is_flag=True,
        help="No progress bars (they are also off when stderr is not a terminal or CI is set).",
    )(command)


def start_progress(quiet: bool) -> None:
    """Switch the library's progress bars on for this command, unless unwanted."""
    from unet_tf.runtime.progress import set_enabled, wanted

    set_enabled(wanted(quiet))


def override_data(cfg: RunConfig, opts: dict) -> None:
    """Apply the data options that ``fit`` and ``augment-preview`` share to ``cfg``."""
    from unet_tf.data.augment import parse_augment_option

    override(
        cfg,
        "data",
        data=path_str(opts["data"]),
        format=opts["fmt"],
        sequences=comma_list(opts["sequences"]),
        annotations=opts["annotations"],
        masks=path_str(opts["masks"]),
        size=opts["size"],
        patch=opts["patch"],
        fg_prob=opts["fg_prob"],
        mask_threshold=opts["mask_threshold"],
        channels=parse_channels(opts["channels"]),
        augment=None if opts["augment"] is None else parse_augment_option(opts["augment"]),
    )


def inference_options(command: F) -> F:
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
        click.option(
            "--overlap",
            type=float,
            default=None,
            help="Tile overlap fraction [the run's plan: 0.5 for thin structures, else 0.25].",
        ),
        click.option(
            "--blend", type=choice(BLENDS), default="gaussian", help="Tile weighting [gaussian]."
        ),
        click.option("--tile-batch", type=int, default=4, help="Tiles per forward pass [4]."),
        click.option(
            "--tta",
            type=choice(TTA_MODES),
            default=None,
            help="Average over flips (4 passes) or all 8 rotations/flips (d4) "
            "[the run's plan: flips; without a plan none].",
        ),
        click.option(
            "--resize", is_flag=True, help="Resize images to the training size (papers' protocol)."
        ),
        click.option("--threshold", type=float, help="Foreground is p > this [the run's, 0.5]."),
        click.option(
            "--instances",
            is_flag=True,
            help="Label objects (by default for runs with a separating --target): connected "
            "components, or the boundary or distance target's watershed; holes filled.",
        ),
        click.option(
            "--min-size", type=int, help="--instances: drop smaller objects (px) [the run's, 0]."
        ),
        click.option(
            "--split-touching",
            is_flag=True,
            default=None,
            help="--instances: split touching objects (distance-transform watershed).",
        ),
        click.option(
            "--interior-threshold",
            type=float,
            help="--instances, boundary target: watershed markers are p(interior) > this "
            "[the run's, chosen on its validation images].",
        ),
        click.option(
            "--seed-height",
            type=float,
            help="--instances, distance target: seeds are maxima of the distance map (0-1) "
            "this much above their saddle [the run's, chosen on its validation images].",
        ),
        click.option(
            "--remove-border",
            is_flag=True,
            default=None,
            help="--instances: drop objects touching the image's edge.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_inference(opts: dict) -> tuple[InferenceOptions, InstanceOptions | None]:
    """Pop the :func:`inference_options` out of ``opts``: inference and instance settings.

    The instance settings are None without ``--instances``.
    """
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
    instances = opts.pop("instances")
    given = InstanceOptions(
        min_size=opts.pop("min_size"),
        split_touching=opts.pop("split_touching"),
        interior_threshold=opts.pop("interior_threshold"),
        seed_height=opts.pop("seed_height"),
        remove_border=opts.pop("remove_border"),
    )
    for ok, message in given.settings().checks():
        if not ok:
            raise UserError(message)
    if given != InstanceOptions() and not instances:
        raise UserError(
            "--min-size, --split-touching, --interior-threshold, --seed-height and "
            "--remove-border need --instances"
        )
    return options, given if instances else None
