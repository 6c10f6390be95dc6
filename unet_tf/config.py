"""Configuration as data: one dataclass tree, saved as ``config.yaml`` in every run.

Like nnU-Net's plans files, the saved YAML is the complete recipe: ``unet-tf fit
--config runs/X/config.yaml`` repeats run X, and inference reads the same file to
know the training size, channels and threshold. Fields that are resolved from the
data or the hardware (``in_channels``, ``depth``, ``precision``) are written back
with their resolved values, so the file records what actually ran.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unet_tf.atomic import atomic_write_text
from unet_tf.errors import UserError, first_line

LR_SCHEDULES = ("step", "cosine", "plateau", "none")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SKIP_MERGES = ("resize", "crop", "pad")
BLOCKS = ("plain", "residual")  # a U-Net level's two convolutions, with or without a shortcut
ATTENTION = ("off", "on")  # attention gates on the skips (model.attention), as tune names them
# --backbone sm:<name> builds segmentation-models' U-Net (unet_tf.models.sm); the config
# checks it too, and sits below models, so the prefix lives here.
SM_PREFIX = "sm:"
INPUT_ADAPTERS = ("repeat", "conv")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
JIT_COMPILE = ("auto", "on", "off")
ANNOTATIONS = ("gt", "st", "gt+st")  # Cell Tracking Challenge gold, silver, gold else silver
TARGET_AUTO = "auto"  # resolved from the training masks (unet_tf.training.resolve)
AUTO_THRESHOLD_UNTIL_CHOSEN = 0.5  # what --threshold auto applies until one is chosen
ACTIVATIONS = ("auto", "sigmoid", "softmax")  # the output head (ModelConfig.activation)
SPLITS = ("auto", "random", "blocked")  # how validation frames are held out of --data


@dataclass
class ModelConfig:
    """The network: architecture, encoder and output head."""

    backbone: str = "none"
    depth: int | None = None  # pooling steps; None adapts to the input size (at most 4)
    base_filters: int = 32  # nnU-Net's default; the 2015 U-Net used 64
    skip_merge: str = "resize"
    block: str = "plain"  # BLOCKS: every level of the scratch U-Net; a backbone's decoder
    attention: bool = False  # attention gates weigh each skip before the decoder joins it
    dropout: float = 0.0
    kernel_init: str = "glorot_uniform"
    num_classes: int = 1  # output channels: 1 = binary, N > 1 = classes or a target's maps
    # sigmoid: each channel its own probability; softmax: one class per pixel; auto (runs
    # before the distance target): sigmoid for 1 channel, softmax for more. Set by the target.
    activation: str = "auto"
    in_channels: int | None = None  # resolved from the training images
    encoder_weights: str = "imagenet"  # imagenet | none | path to a local .h5
    encoder_weights_md5: str | None = None  # md5 of the weights file that was loaded
    freeze: bool = False  # encoder weights fixed, its BatchNorm in inference mode
    freeze_epochs: int = 0  # > 0: frozen for this many epochs, then fine-tuned
    input_adapter: str = "repeat"  # grayscale to 3 channels: repeat | conv (learnable 1x1)

    @property
    def head(self) -> str:
        """The output activation the network ends with: 'sigmoid' or 'softmax'."""
        if self.activation != "auto":
            return self.activation
        return "sigmoid" if self.num_classes == 1 else "softmax"


@dataclass
class DataConfig:
    """Where the images come from and how they are turned into training batches."""

    data: str | None = None  # None = the bundled ISBI 2012 sample
    format: str = "auto"
    val: str | None = None
    val_split: float = 0.2
    size: int = 256  # resize every image to size x size (the papers' protocol)
    patch: int | None = None  # or train on random patch x patch crops at full resolution
    # px: rescale each image so its objects' median diameter is this (unet_tf.data.scale),
    # in training and in inference; None = every image at its own scale. Needs patch.
    object_size: float | None = None
    fg_prob: float = 0.0  # chance that a patch is centred on foreground (nnU-Net: 0.33)
    mask_threshold: float = 0.0  # foreground = mask value > threshold
    # names, or {name: {parameter: value}} mappings read from an --augment YAML file
    augment: list[str | dict[str, dict[str, Any]]] = field(
        default_factory=lambda: ["hflip", "rotate"]
    )
    steps_per_epoch: int | None = None
    folds: int = 0
    fold: int = 0
    sequences: list[str] | None = None
    val_sequences: list[str] | None = None
    annotations: str = "gt+st"
    border_weights: bool = False
    masks: str | None = None  # video: folder (or TIFF stack) of masks named by frame index
    split_seed: int = 42
    val_names: list[str] | None = None  # recorded by the split, so a rerun reuses it
    # image channels to use, counted from 0 (--channels 0,2); None = all; inference reuses them
    channels: list[int] | None = None
    # binary | boundary | distance | contact (unet_tf.data.targets.TARGETS); auto: INSTANCE_DEFAULT
    # there for masks that label cells one by one, else binary
    target: str = TARGET_AUTO
    # px: the boundary target's cell-border band, the contact target's band; None = the
    # target's own (unet_tf.data.targets.band_width), resolved into config.yaml by fit
    border_width: int | None = None
    # auto = blocked for time-lapse (CTC) and video frames, random otherwise (see data.splits)
    split: str = "auto"
    split_gap: int = 3  # blocked: annotated frames left out between validation and training


@dataclass
class TrainConfig:
    """Optimisation: loss, schedule, precision and bookkeeping."""

    epochs: int | None = None  # None = 40 from scratch, 20 with a pretrained backbone
    batch_size: int = 4
    lr: float = 1e-3
    lr_schedule: str = "step"  # x0.75 at 50% and 75% of the epochs, as in the paper
    loss: str = "dice-focal"
    focal_alpha: float = 0.8
    focal_gamma: float | None = None  # None = 2.0 for focal, 0.9 for dice-focal/focal-logdice
    logdice_weight: float = 1.0  # alpha in alpha * focal - log(Dice)
    precision: str = "auto"
    jit_compile: str = "auto"  # XLA: auto | on | off
    strategy: str = "auto"  # auto | none | mirrored | multiworker (see unet_tf.runtime.distribute)
    devices: list[str] | None = None  # for mirrored: e.g. ["GPU:0", "GPU:1"]; None = all GPUs
    scale_lr: bool = False  # multiply lr by the number of replicas (linear scaling rule)
    fine_tune_lr: float | None = None  # after model.freeze_epochs; None = lr / 10
    seed: int = 42
    threshold: float | str = 0.5  # or "auto": Dice-optimal on the validation set
    # Wall-clock training budget (--budget): training stops when it is spent.
    budget_seconds: float | None = None
    # Resolved from the budget and the measured step time: the optimizer steps planned,
    # over which the LR schedule is laid (None: the schedule follows the epochs).
    budget_steps: int | None = None


@dataclass
class PostprocessConfig:
    """How ``--instances`` turns probabilities into labelled cells (unet_tf.inference.postprocess).

    ``fit`` chooses ``interior_threshold`` (boundary target) or ``seed_height`` (distance
    target) on the validation images; the command line's ``--instances`` options override
    any of these.
    """

    interior_threshold: float = 0.5  # boundary target: watershed markers are p(interior) > this
    # distance target: seeds are maxima of the predicted distance map (each cell's peak is 1)
    # standing at least this much above the saddle to any higher neighbouring maximum
    seed_height: float = 0.3
    # distance target: objects whose predicted map never rises to this are fragments
    min_peak: float = 0.3
    min_size: int = 0  # px: smaller objects are removed
    fill_holes: bool = True
    remove_border: bool = False  # drop objects touching the image's edge
    split_touching: bool = False  # binary target: distance-transform watershed
    split_depth: float = 2.0  # px: how much narrower a neck must be to split there

    def checks(self) -> list[tuple[bool, str]]:
        """(ok, message) per setting; the one home of these ranges, for configs and flags."""
        return [
            (
                0.0 < self.interior_threshold < 1.0,
                "interior_threshold (--interior-threshold) must be between 0 and 1, e.g. 0.5",
            ),
            (
                0.0 < self.seed_height < 1.0,
                "seed_height (--seed-height) must be between 0 and 1, e.g. 0.3",
            ),
            (0.0 <= self.min_peak < 1.0, "min_peak must be in [0, 1)"),
            (self.min_size >= 0, "min_size (--min-size) must be 0 or more pixels"),
            (self.split_depth > 0, "split_depth must be positive"),
        ]


@dataclass
class RunConfig:
    """Everything needed to repeat a run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    version: str = ""
    # What the plan (`unet-tf plan`, or `fit` without --size/--patch) measured and why it
    # chose these settings (None: not planned).
    plan: dict[str, Any] | None = None

    @property
    def input_size(self) -> int:
        """The side of the square crops the network trains on."""
        return self.data.patch or self.data.size

    @property
    def resize_to(self) -> int | None:
        """The side images are resized to for training; None when training on patches."""
        return None if self.data.patch else self.data.size

    @property
    def epochs(self) -> int:
        if self.train.epochs is not None:
            return self.train.epochs
        return 40 if self.model.backbone == "none" else 20

    def validate(self) -> None:
        """Reject values the CLI's choices cannot catch (configs loaded from YAML)."""
        checks = [
            (
                self.train.lr_schedule in LR_SCHEDULES,
                f"lr_schedule {self.train.lr_schedule!r} is not one of {LR_SCHEDULES}",
            ),
            (
                self.train.precision in PRECISIONS,
                f"precision {self.train.precision!r} is not one of {PRECISIONS}",
            ),
            (
                self.train.strategy in STRATEGIES,
                f"strategy {self.train.strategy!r} is not one of {STRATEGIES}",
            ),
            (
                self.train.jit_compile in JIT_COMPILE,
                f"jit_compile {self.train.jit_compile!r} is not one of {JIT_COMPILE}",
            ),
            (
                self.model.skip_merge in SKIP_MERGES,
                f"skip_merge {self.model.skip_merge!r} is not one of {SKIP_MERGES}",
            ),
            (
                self.model.block in BLOCKS,
                f"block {self.model.block!r} is not one of {BLOCKS}",
            ),
            (
                self.model.block == "plain" or not self.model.backbone.startswith(SM_PREFIX),
                "--block residual is unet-tf's own decoder; segmentation-models' "
                f"({SM_PREFIX}) has its own blocks, so drop --block",
            ),
            (
                not self.model.attention or not self.model.backbone.startswith(SM_PREFIX),
                "--attention gates unet-tf's own decoder; segmentation-models' "
                f"({SM_PREFIX}) has none, so drop --attention",
            ),
            (0.0 <= self.data.val_split < 1.0, "val_split must be in [0, 1)"),
            (
                self.data.annotations in ANNOTATIONS,
                f"annotations {self.data.annotations!r} is not one of {ANNOTATIONS}",
            ),
            (
                self.data.split in SPLITS,
                f"split {self.data.split!r} is not one of {SPLITS}",
            ),
            (self.data.split_gap >= 0, "split_gap (--split-gap) must be 0 or more"),
            (
                self.data.channels is None
                or (
                    len(self.data.channels) > 0
                    and min(self.data.channels) >= 0
                    and len(set(self.data.channels)) == len(self.data.channels)
                ),
                "channels (--channels) must list distinct channel numbers from 0, e.g. [0, 2]",
            ),
            (0.0 <= self.data.fg_prob <= 1.0, "fg_prob must be in [0, 1]"),
            (
                self.data.steps_per_epoch is None or self.data.steps_per_epoch >= 1,
                "steps_per_epoch must be at least 1",
            ),
            (
                not self.data.border_weights
                or (
                    self.train.loss == "weighted-bce"
                    and (self.model.num_classes == 1 or self.data.target == "boundary")
                ),
                "border_weights (--border-weights) needs --loss weighted-bce and binary masks",
            ),
            (self.data.size >= 8, "size must be at least 8 pixels"),
            (self.data.patch is None or self.data.patch >= 8, "patch must be at least 8 pixels"),
            (self.train.batch_size >= 1, "batch_size must be at least 1"),
            (self.train.lr > 0, "lr must be positive"),
            (0.0 <= self.train.focal_alpha <= 1.0, "focal_alpha (--focal-alpha) must be in [0, 1]"),
            (
                self.train.focal_gamma is None or self.train.focal_gamma >= 0,
                "focal_gamma (--focal-gamma) must be 0 or more",
            ),
            (self.train.logdice_weight > 0, "logdice_weight (--logdice-weight) must be positive"),
            (self.model.num_classes >= 1, "num_classes must be at least 1"),
            (
                self.model.activation in ACTIVATIONS,
                f"activation {self.model.activation!r} is not one of {ACTIVATIONS}",
            ),
            (
                self.model.activation != "softmax" or self.model.num_classes > 1,
                "activation softmax needs at least 2 classes; use sigmoid for 1",
            ),
            (
                self.model.input_adapter in INPUT_ADAPTERS,
                f"input_adapter {self.model.input_adapter!r} is not one of {INPUT_ADAPTERS}",
            ),
            (
                self.model.backbone != "none"
                or not (self.model.freeze or self.model.freeze_epochs),
                "--freeze and --freeze-epochs need a pretrained --backbone",
            ),
            (
                not (self.model.freeze and self.model.freeze_epochs),
                "--freeze keeps the encoder frozen throughout and --freeze-epochs K unfreezes "
                "it after K epochs; choose one",
            ),
            (self.epochs >= 1, "epochs (--epochs) must be at least 1"),
            (
                0 <= self.model.freeze_epochs < self.epochs,
                f"freeze_epochs must be in [0, {self.epochs}) (the epochs); "
                "use --freeze to keep the encoder frozen throughout",
            ),
            (
                self.train.fine_tune_lr is None or self.train.fine_tune_lr > 0,
                "fine_tune_lr must be positive",
            ),
            (self.model.base_filters >= 1, "base_filters must be at least 1"),
            (
                self.train.budget_seconds is None or self.train.budget_seconds > 0,
                "budget_seconds (--budget) must be longer than 0 s",
            ),
            (
                self.train.budget_steps is None or self.train.budget_steps >= 1,
                "budget_steps must be at least 1",
            ),
            (
                self.train.threshold == "auto"
                or (
                    isinstance(self.train.threshold, (int, float)) and 0 < self.train.threshold < 1
                ),
                f"threshold {self.train.threshold!r} must be 'auto' or between 0 and 1",
            ),
            (0.0 <= self.model.dropout < 1.0, "dropout must be in [0, 1)"),
            (
                self.data.border_width is None or self.data.border_width >= 1,
                "border_width (--border-width) must be at least 1 px",
            ),
            (
                self.data.object_size is None or self.data.object_size >= 2,
                "object_size (--object-size) must be at least 2 px",
            ),
            (
                self.data.target in (TARGET_AUTO, "binary", "boundary")
                or not self.data.border_weights,
                "border_weights (--border-weights) need --target binary or boundary",
            ),
            *self.postprocess.checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"invalid configuration: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from plain data, checking every key and value type against the fields."""
        return _build(cls, raw or {}, source)

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise UserError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise UserError(
                f"{path} is a folder; pass a config file, e.g. {path / 'config.yaml'}"
            ) from None
        except UnicodeDecodeError:
            raise UserError(
                f"{path} is not a text file; pass a YAML config such as a run's config.yaml"
            ) from None
        except yaml.YAMLError as exc:
            raise UserError(f"{path} is not valid YAML: {first_line(exc)}") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path} must hold a mapping with model/data/train sections")
        return cls.from_dict(raw, str(path))


def _build(cls: type, raw: dict[str, Any], source: str) -> Any:
    """Build a (nested) dataclass from a dict, naming any key or value that does not fit.

    A hand-edited YAML file is the one input the CLI's option types never see, so each
    value is checked against its field's type hint here, before it can fail deep in
    training with a traceback.
    """
    if not isinstance(raw, dict):
        raise UserError(f"{source} must be a mapping of {cls.__name__} settings, not {raw!r:.60}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in set(raw) - names)
    if unknown:
        raise UserError(
            f"{source}: unknown setting(s) {', '.join(unknown)} in {cls.__name__}; "
            f"valid ones are {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in raw.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{source}:{key}")
            continue
        try:
            kwargs[key] = coerce(value, hint)
        except ValueError:
            numeric = "; quoted numbers such as '10' or '1e-3' are accepted"
            raise UserError(
                f"{source}: {key} must be {describe_type(hint)}, not {value!r:.60}"
                f"{numeric if _is_numeric(hint) else ''}"
            ) from None
    return cls(**kwargs)


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names, or ValueError when it cannot be one.

    YAML 1.1 reads ``1e-3`` (no dot) and quoted numbers as text, so numeric text is
    read as a number; a number where text is expected becomes text (a data folder
    named 2024). Booleans are never numbers, nor numbers booleans.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is type(None) and value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        for arg in args:  # in declared order: float | str reads "0.5" as a number
            try:
                return coerce(value, arg)
            except ValueError:
                continue
    elif origin is list and isinstance(value, list):
        return [coerce(item, args[0]) for item in value]
    elif origin is dict and isinstance(value, dict):
        return {coerce(k, args[0]): coerce(v, args[1]) for k, v in value.items()}
    elif hint is bool and isinstance(value, bool):
        return value
    elif hint in (int, float) and isinstance(value, (int, float, str)):
        if isinstance(value, bool) or (hint is int and isinstance(value, float)):
            raise ValueError(value)
        return hint(value.strip() if isinstance(value, str) else value)
    elif hint is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def describe_type(hint: Any) -> str:
    """A type hint in the words of an error message."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in args)
    if typing.get_origin(hint) is list:
        return f"a list (each item {describe_type(args[0])})"
    if typing.get_origin(hint) is dict:
        return "a mapping"
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return "null" if hint is type(None) else names.get(hint, "anything")


def _is_numeric(hint: Any) -> bool:
    return hint in (int, float) or any(_is_numeric(arg) for arg in typing.get_args(hint))


def override(cfg: RunConfig, section: str, **values: Any) -> None:
    """Set the given fields of one section, skipping values that are None (flag not given)."""
    target = getattr(cfg, section)
    for key, value in values.items():
        if value is None:
            continue
        if not hasattr(target, key):
            raise KeyError(f"{section} has no field {key}")
        setattr(target, key, value)
