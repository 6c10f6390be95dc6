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
        click.option("--overlap", type=float, default=0.25, help="Tile overlap fraction [0.25]."),
        click.option(
            "--blend", type=choice(BLENDS), default="gaussian", help="Tile weighting [gaussian]."
        ),
        click.option("--tile-batch", type=int, default=4, help="Tiles per forward pass [4]."),
        click.option(
            "--tta",
            type=choice(TTA_MODES),
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
    instances, min_size = opts.pop("instances"), opts.pop("min_size")
    split = opts.pop("split_touching")
    if (min_size or split) and not instances:
        raise UserError("--min-size and --split-touching need --instances")
    return options, InstanceOptions(min_size, split_touching=split) if instances else None
