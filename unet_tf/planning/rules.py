"""The plan's rules: from a fingerprint (and a time budget) to a complete config.

Every rule is a few lines here, in the order a person would decide, and returns its
choice with a one-line reason that is printed and saved in the plan, so nobody has
to trust a black box. docs/plan.md explains each rule and the measurements behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from unet_tf.config import TARGET_AUTO, RunConfig
from unet_tf.data.targets import (
    CONTACT_BAND,
    CONTACT_CHANNEL,
    SMALL_OBJECT_TARGET,
    SMALL_OBJECTS,
    TARGETS,
    band_width,
    default_target,
    multilabel,
)
from unet_tf.evaluation.tuning import chooses_threshold
from unet_tf.planning.fingerprint import Fingerprint
from unet_tf.training.callbacks import VALIDATION_SHARE  # the budget's clock stops at it

RESIZE_SIDE = 256  # the studies' protocol
MIN_OBJECT_PX = 12  # an object smaller than this after resizing is hard to segment
MAX_ASPECT = 2.0  # beyond this, resizing to a square distorts shapes too much
PATCH_RANGE = (96, 256)
THIN_PATCH = 128
PIXELS_PER_BATCH = 4 * RESIZE_SIDE**2  # the first study's batch of 4 at 256 px
RARE_FOREGROUND = 0.1  # below this, patches are centred on foreground a third of the time
FEW_IMAGES = 30  # the 2015 U-Net's argument for elastic deformations
# Fewer steps than this at 32 base filters: use 16. On DRIVE at 30 minutes, 16 filters
# trained 1,150 steps where 32 trained 397, and scored test F1 0.808 vs 0.801 (docs/plan.md).
MIN_STEPS_AT_32 = 1000
SPECK_SHARE = 0.02  # objects under this share of a median object's area are specks
EPOCH_VALIDATION_SHARE = 0.2  # under a budget, an epoch's validation takes at most this
TTA = "flips"  # predictions averaged over the 4 flips: better on every dataset measured
# Patch-trained networks predict tiles of at least this side. The network standardises
# each tile by its own mean and spread, and a larger tile's are nearer the whole image's.
# On DSB 2018's validation images (three splits, 96 px patches; docs/data.md) 256 px
# tiles raised the cross-fitted PQ by 0.012, -0.009 and 0.040 over 96 px ones (whole
# images: 0.009, -0.043, 0.032); on DRIVE's, 256 px tiles scored level with 128 px ones.
INFERENCE_TILE = 256


@dataclass
class Plan:
    """A resolved recipe for one dataset, with the reason for every choice."""

    config: RunConfig
    fingerprint: Fingerprint
    reasons: dict[str, str] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    budget_seconds: float | None = None
    seconds_per_step: float | None = None

    def to_config(self) -> RunConfig:
        """The config with the plan (fingerprint, reasons, timing) recorded in it."""
        record = {
            "fingerprint": self.fingerprint.to_dict(),
            "reasons": dict(self.reasons),
            "inference": dict(self.inference),
            "budget_seconds": self.budget_seconds,
            "seconds_per_step": self.seconds_per_step,
        }
        return replace(self.config, plan=record)


def _multiple_of_32(value: float) -> int:
    return int(value // 32 * 32)


def choose_input(fp: Fingerprint, rescaled: bool = False) -> tuple[int | None, int | None, str]:
    """(size, patch, reason): resize to 256 px, or train on full-resolution patches.

    Images ``rescaled`` so that their objects are ``fp.object_diameter`` px
    (``--object-size``) keep their own sizes, so they train on patches.
    """
    side = min(fp.median_height, fp.median_width)
    if rescaled:
        why = f"each image rescaled so that its objects are {fp.object_diameter:.3g} px"
    elif fp.thin:
        why = f"thin structures (skeleton/area {fp.thin_score:.2f}) vanish when resized"
    elif fp.object_diameter and fp.object_diameter * RESIZE_SIDE / side < MIN_OBJECT_PX:
        shrunk = fp.object_diameter * RESIZE_SIDE / side
        why = f"objects of {fp.object_diameter:.0f} px would shrink to {shrunk:.0f} px at 256"
    elif fp.max_aspect > MAX_ASPECT:
        why = f"images up to {fp.max_aspect:.1f}:1 would be squashed into squares"
    elif side <= RESIZE_SIDE * 1.5 or not fp.object_diameter:
        return RESIZE_SIDE, None, f"images of {side} px resize to 256 px (the studies' protocol)"
    else:
        shrunk = fp.object_diameter * RESIZE_SIDE / side
        return (
            RESIZE_SIDE,
            None,
            f"objects of {fp.object_diameter:.0f} px stay {shrunk:.0f} px when resized to 256",
        )
    # Objects plus context; a thin structure's context is its network, not its width
    # (DRIVE: 128 px patches beat resizing, 0.647 vs 0.429 Dice, docs/data.md).
    wanted = max(THIN_PATCH if fp.thin else PATCH_RANGE[0], 4 * fp.object_diameter)
    patch = min(_multiple_of_32(min(wanted + 31, PATCH_RANGE[1])), _multiple_of_32(fp.min_side))
    patch = max(patch, 32)
    return None, patch, f"{why}: full-resolution {patch} px patches (4x the objects, capped)"


def choose_depth(fp: Fingerprint, input_size: int) -> tuple[int, str]:
    """Pooling steps: enough that the bottleneck sees a whole object, at most 5."""
    deepest = max(1, int(math.log2(input_size)) - 3)  # keep the bottleneck >= 8 px
    wanted = math.ceil(math.log2(max(fp.object_diameter, 16))) - 1 if fp.object_diameter else 4
    depth = max(2, min(wanted, 5, deepest))
    reason = (
        f"{depth} poolings: the bottleneck's receptive field spans objects of "
        f"~{fp.object_diameter:.0f} px within {input_size} px inputs"
    )
    return depth, reason


def choose_target(fp: Fingerprint, cfg: RunConfig) -> tuple[str, str]:
    """(target, reason): teach touching cells apart when the masks label them one by one."""
    target = default_target(
        fp.instances, cfg.model.num_classes, cfg.data.border_weights, fp.object_diameter
    )
    if target == "binary":
        if fp.instances:
            return target, "the foreground mask: --classes or --border-weights train it"
        return target, "the masks are pixel masks, not one label per object: the foreground"
    small = (
        f"; objects of ~{fp.object_diameter:.0f} px are under {SMALL_OBJECTS:.0f} px, "
        "where the distance map blurs touching neighbours into one peak"
        if target == SMALL_OBJECT_TARGET
        else ""
    )
    return target, (
        f"the masks label ~{fp.object_count} objects per image one by one: {target}, "
        f"{TARGETS.help(target)}, so touching cells come apart{small}"
    )


def choose_border_width(target: str, cfg: RunConfig) -> tuple[int | None, str | None]:
    """(border_width, reason): the band of the target that trains, if it draws one.

    ``target`` is the one that trains: the plan's, or the user's ``--target``. The
    width is the target's own (:func:`~unet_tf.data.targets.band_width`, the same rule
    ``fit --no-plan`` follows) unless ``--border-width`` gives one. A wider contact band
    marks more pixels of each contact, so the network learns the rare channel from
    more examples and the watershed damps the map over more of the neck between two
    nuclei. Only the targets with a band get a reason.
    """
    width = band_width(target, cfg.data.border_width)
    if width is None:
        return width, None
    if CONTACT_CHANNEL in TARGETS.get(target).channel_names and width == CONTACT_BAND:
        return width, (
            f"{width} px: the contact band's radius; on DSB 2018's nuclei it scored "
            "a higher mean validation PQ than 2, 3 and 5 px over three splits"
        )
    return width, f"{width} px: the {target} target's band"


def choose_threshold(target: str, cfg: RunConfig) -> tuple[float | str, str]:
    """(threshold, reason): the foreground mask's cut, chosen on validation images."""
    if chooses_threshold(target, "auto"):
        return "auto", (
            f"chosen with the {target} target's watershed setting on the validation images "
            "(best cross-fitted panoptic quality): an under-trained model's foreground "
            "spreads past the cells"
        )
    if target != "binary" or cfg.model.num_classes != 1:
        return (
            cfg.train.threshold,
            f"{cfg.train.threshold}: the {target} target's classes are an arg-max",
        )
    return "auto", (
        "chosen on the validation images (Dice-optimal; the score printed is cross-fitted): "
        "dice-focal's probabilities are not calibrated (DRIVE: Dice 0.645 at 0.5, 0.742 "
        "cross-fitted at the chosen 0.87)"
    )


def choose_batch(input_size: int) -> tuple[int, str]:
    batch = max(2, min(16, round(PIXELS_PER_BATCH / input_size**2)))
    return batch, f"{batch} x {input_size}^2 px keeps the first study's pixels per step"


def choose_sampling(fp: Fingerprint, patch: int | None) -> tuple[float, str]:
    if patch and fp.foreground_fraction < RARE_FOREGROUND:
        return 0.33, (
            f"foreground is {100 * fp.foreground_fraction:.1f}% of pixels: a third of the "
            "patches are centred on it (nnU-Net's oversampling)"
        )
    return 0.0, f"foreground is {100 * fp.foreground_fraction:.0f}% of pixels: uniform patches"


def choose_loss(fp: Fingerprint, target: str = "binary") -> tuple[str, str]:
    if fp.foreground_fraction < 0.2:
        why = (
            f"foreground is {100 * fp.foreground_fraction:.0f}% of pixels: soft Dice + focal "
            "(gamma 0.9) copes with the imbalance (the first study's loss)"
        )
    else:
        why = (
            "soft Dice + focal (gamma 0.9), the first study's loss: Dice optimises the "
            "reported score, focal keeps the gradients of hard pixels"
        )
    if multilabel(target):
        spec = TARGETS.get(target)
        masks = " and ".join(spec.channel_names[c] for c in spec.mask_channels)
        why += f"; on the {target} target it scores {masks}, cross-entropy the map"
    return "dice-focal", why


def choose_augmentation(fp: Fingerprint) -> tuple[list[str], str]:
    augment = ["hflip", "vflip", "rotate"]
    why = ["microscopy has no up or left: flips and rotations"]
    if fp.intensity_spread > 0.1:
        augment.append("brightness-contrast")
        why.append(f"image brightness varies ({fp.intensity_spread:.2f} CV): brightness-contrast")
    if fp.images < FEW_IMAGES:
        augment.append("elastic")
        why.append(f"only {fp.images} images: elastic deformations (the 2015 U-Net)")
    return augment, "; ".join(why)


def choose_min_size(fp: Fingerprint) -> tuple[int, str]:
    """(min_size, reason): the smallest object ``--instances`` keeps, from the objects' size.

    A watershed leaves slivers between touching cells and specks where the foreground
    frays; each would be counted as a cell (a false positive, or a split cell). A cell
    cut by the image's edge is still kept: only objects under 2% of a median object's
    area go, and the reference masks rarely hold anything that small.
    """
    if not fp.object_count or fp.object_diameter <= 0:
        return 0, "no objects in the masks: every predicted object is kept"
    area = math.pi / 4 * fp.object_diameter**2
    min_size = int(SPECK_SHARE * area)
    return min_size, (
        f"objects under {min_size} px ({100 * SPECK_SHARE:.0f}% of a median object of "
        f"~{area:.0f} px) are specks, not cells"
    )


def choose_steps(
    fp: Fingerprint,
    batch: int,
    budget_seconds: float | None,
    seconds_per_step: float | None,
    validation_seconds: float = 0.0,
) -> tuple[int | None, int, str]:
    """(epochs, steps per epoch, reason); epochs fill the budget at the measured speed."""
    per_epoch = max(10, min(50, math.ceil(fp.images * (1 - 0.2) / batch)))
    if not budget_seconds or not seconds_per_step:
        return None, per_epoch, f"{per_epoch} steps per epoch; epochs: the default (no budget)"
    epochs, per_epoch = budget_epochs(
        budget_seconds, seconds_per_step, per_epoch, validation_seconds=validation_seconds
    )
    return (
        epochs,
        per_epoch,
        (
            f"{seconds_per_step:.2f} s/step and {validation_seconds:.0f} s per validation "
            f"measured here: {epochs} epochs x {per_epoch} steps fill "
            f"{budget_seconds / 60:.0f} min, {100 * VALIDATION_SHARE:.0f}% kept for the final "
            "scoring"
        ),
    )


def lengthened(per_epoch: int, seconds_per_step: float, validation_seconds: float) -> int:
    """Steps per epoch, at least ``per_epoch``, for validation to take at most
    :data:`EPOCH_VALIDATION_SHARE` of an epoch."""
    share = EPOCH_VALIDATION_SHARE
    needed = math.ceil(validation_seconds * (1 - share) / share / seconds_per_step)
    return max(per_epoch, needed)


def same_steps_epochs(
    epochs: int, per_epoch: int, seconds_per_step: float, validation_seconds: float
) -> tuple[int, int]:
    """(epochs, steps per epoch) without a budget: about the same steps in all, in epochs
    long enough that validation takes at most :data:`EPOCH_VALIDATION_SHARE` of each."""
    longer = lengthened(per_epoch, seconds_per_step, validation_seconds)
    if longer == per_epoch:
        return epochs, per_epoch
    return max(1, round(epochs * per_epoch / longer)), longer


def budget_epochs(
    budget_seconds: float,
    seconds_per_step: float,
    per_epoch: int,
    overhead: float = 0.0,
    validation_seconds: float = 0.0,
) -> tuple[int, int]:
    """(epochs, steps per epoch) that fill the budget, less the validation share.

    ``overhead`` is time training spends once, not per step (tracing the graph);
    ``validation_seconds`` is one end-of-epoch validation pass, which the budget's clock
    counts too. Epochs are lengthened until validation takes at most
    :data:`EPOCH_VALIDATION_SHARE` of each: on DSB 2018 a pass over 30 full-size images
    took 18 s against 10 s of training per 10-step epoch, and a 10-minute budget trained
    187 of 480 planned steps. Whole epochs, so every epoch is validated and backed up;
    an epoch longer than the whole budget is shortened to the steps that fit.
    """
    usable = budget_seconds * (1 - VALIDATION_SHARE) - overhead
    per_epoch = lengthened(per_epoch, seconds_per_step, validation_seconds)
    epochs = int(usable / (per_epoch * seconds_per_step + validation_seconds))
    if epochs >= 1:
        return epochs, per_epoch
    return 1, max(1, int((usable - validation_seconds) / seconds_per_step))


def derive_plan(
    fp: Fingerprint,
    base: RunConfig | None = None,
    budget_seconds: float | None = None,
    seconds_per_step: Callable[[RunConfig], float] | None = None,
    validation_seconds: Callable[[RunConfig], float] | None = None,
) -> Plan:
    """Apply every rule to ``fp``; the two callables time a config's training step and
    its end-of-epoch validation on this machine."""
    cfg = base or RunConfig()
    reasons: dict[str, str] = {}
    object_size = cfg.data.object_size
    seen = replace(fp, object_diameter=object_size) if object_size else fp  # what the net sees
    target, reasons["target"] = choose_target(seen, cfg)
    threshold, reasons["threshold"] = choose_threshold(target, cfg)
    trains = target if cfg.data.target == TARGET_AUTO else cfg.data.target  # --target wins
    border_width, band = choose_border_width(trains, cfg)
    if band:
        reasons["border_width"] = band
    size, patch, reasons["input"] = choose_input(seen, rescaled=bool(object_size))
    input_size = patch or size or RESIZE_SIDE
    # A pretrained encoder fixes its own levels and filters; the rules below size a
    # scratch U-Net, and a depth planned for one would be refused with the encoder.
    scratch = cfg.model.backbone == "none"
    if scratch:
        depth, reasons["depth"] = choose_depth(seen, input_size)
    else:
        depth = cfg.model.depth
        reasons["depth"] = f"the {cfg.model.backbone} encoder's own levels"
    batch, reasons["batch_size"] = choose_batch(input_size)
    fg_prob, reasons["fg_prob"] = choose_sampling(fp, patch)
    loss, reasons["loss"] = choose_loss(fp, target)
    augment, reasons["augment"] = choose_augmentation(fp)
    min_size, reasons["min_size"] = choose_min_size(fp)
    data = replace(
        cfg.data,
        target=target,
        border_width=border_width,
        size=size or cfg.data.size,
        patch=patch,
        fg_prob=fg_prob,
        augment=augment,
    )
    model = replace(cfg.model, depth=depth, base_filters=32) if scratch else cfg.model
    train = replace(cfg.train, batch_size=batch, loss=loss, threshold=threshold)
    postprocess = replace(cfg.postprocess, min_size=min_size)
    planned = replace(cfg, data=data, model=model, train=train, postprocess=postprocess)
    timed = seconds_per_step(planned) if seconds_per_step and budget_seconds else None
    reasons["base_filters"] = (
        "32 filters at the first level (nnU-Net's default)"
        if scratch
        else f"the {cfg.model.backbone} encoder's own filters"
    )
    steps_at_32 = budget_seconds * (1 - VALIDATION_SHARE) / timed if timed else None
    if scratch and steps_at_32 is not None and steps_at_32 < MIN_STEPS_AT_32:
        narrow = replace(planned, model=replace(model, base_filters=16))
        timed_16 = seconds_per_step(narrow)
        reasons["base_filters"] = (
            f"16 filters: at 32 the budget allows only {int(steps_at_32)} steps "
            f"({timed:.2f} s/step), "
            f"under {MIN_STEPS_AT_32}: more steps of a narrower net score better (DRIVE, 30 min)"
        )
        planned, timed = narrow, timed_16
    validating = validation_seconds(planned) if validation_seconds and timed else 0.0
    epochs, per_epoch, reasons["epochs"] = choose_steps(
        fp, batch, budget_seconds, timed, validating
    )
    planned = replace(
        planned,
        data=replace(planned.data, steps_per_epoch=per_epoch),
        train=replace(planned.train, epochs=epochs),
    )
    if fp.time_series:
        reasons["validation"] = "frames of one sequence: validate on a block of frames"
    overlap = 0.5 if fp.thin else 0.25
    tile = max(patch or 0, INFERENCE_TILE)
    applied = {"tile": tile, "overlap": overlap} if patch else {"resize": size}
    inference = {**applied, "tta": TTA}
    reasons["inference"] = (
        f"tiles of {tile} px (the {patch} px patch, at least {INFERENCE_TILE}: each tile is "
        f"standardised alone, and a larger one is more like the whole image) with overlap "
        f"{overlap}"
        if patch
        else f"resize to {size} px (as trained)"
    ) + ", averaged over 4 flips (TTA: 4x the time, better Dice and SEG on every dataset)"
    return Plan(planned, fp, reasons, inference, budget_seconds, timed)
