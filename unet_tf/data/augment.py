"""Augmentation with albumentations: one transform moves image, mask and weights together.

Transforms are named so that a run's ``config.yaml`` lists them as plain strings, or
as ``{name: {parameter: value}}`` when an ``--augment aug.yaml`` file tunes them.
Geometric transforms use nearest-neighbour for masks and weights (the weight map
carries the FOV and the border weights) and mirror the border, so no artificial
black wedges are taught as background.

Intensity transforms assume values in [0, 1] (albumentations' float convention), and
some of them (GaussNoise, MedianBlur) fail on uint16. So :func:`apply` maps every
image, whatever its dtype, to float32 [0, 1] by its own range, augments, and maps
back: 8-bit, 16-bit and float microscopy all get the same relative changes.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pydantic
import yaml
from scipy import ndimage

from unet_tf.config import coerce, describe_type
from unet_tf.errors import UserError, first_line

REFLECT = cv2.BORDER_REFLECT_101


class GridElastic(A.DualTransform):
    """The U-Net paper's elastic deformation.

    Random displacement vectors on a coarse ``grid`` x ``grid`` lattice, drawn from a
    Gaussian with ``std`` pixels standard deviation, interpolated bicubically to a
    smooth per-pixel displacement field (Ronneberger et al. 2015, section 3.1).
    """

    def __init__(self, std: float = 10.0, grid: int = 3, p: float = 0.5):
        super().__init__(p=p)
        if grid < 2 or std < 0:
            raise ValueError("elastic needs grid >= 2 and std >= 0")
        self.std, self.grid = std, grid

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        h, w = params["shape"][:2]
        coarse = self.random_generator.normal(0.0, self.std, size=(2, self.grid, self.grid))
        ys, xs = np.meshgrid(
            np.linspace(0, self.grid - 1, h), np.linspace(0, self.grid - 1, w), indexing="ij"
        )
        dy, dx = (ndimage.map_coordinates(c, [ys, xs], order=3, mode="nearest") for c in coarse)
        rows, cols = np.mgrid[:h, :w].astype(np.float32)
        return {"map_x": (cols + dx).astype(np.float32), "map_y": (rows + dy).astype(np.float32)}

    def _remap(self, array: np.ndarray, map_x, map_y, interpolation: int) -> np.ndarray:
        out = cv2.remap(array, map_x, map_y, interpolation, borderMode=REFLECT)
        return out.reshape(array.shape)

    def apply(self, img: np.ndarray, map_x=None, map_y=None, **params) -> np.ndarray:
        return self._remap(img, map_x, map_y, cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, map_x=None, map_y=None, **params) -> np.ndarray:
        return self._remap(mask, map_x, map_y, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("std", "grid")


def _hflip(p: float = 0.5) -> A.BasicTransform:
    return A.HorizontalFlip(p=p)


def _vflip(p: float = 0.5) -> A.BasicTransform:
    return A.VerticalFlip(p=p)


def _rot90(p: float = 0.5) -> A.BasicTransform:
    return A.RandomRotate90(p=p)


def _rotate(limit: float = 180, p: float = 0.5) -> A.BasicTransform:
    return A.Rotate(limit=limit, border_mode=REFLECT, p=p)


def _elastic(std: float = 10.0, grid: int = 3, p: float = 0.5) -> A.BasicTransform:
    return GridElastic(std=std, grid=grid, p=p)


def _affine(
    scale: float = 0.1,
    translate: float = 0.05,
    rotate: float = 15,
    shear: float = 5,
    p: float = 0.5,
) -> A.BasicTransform:
    return A.Affine(
        scale=(1 - scale, 1 + scale),
        translate_percent=(-translate, translate),
        rotate=(-rotate, rotate),
        shear=(-shear, shear),
        border_mode=REFLECT,
        p=p,
    )


def _brightness_contrast(
    brightness: float = 0.2, contrast: float = 0.2, p: float = 0.5
) -> A.BasicTransform:
    return A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=p)


def _gamma(gamma: float = 0.2, p: float = 0.5) -> A.BasicTransform:
    """Gamma drawn from [1 - gamma, 1 + gamma]."""
    return A.RandomGamma(gamma_limit=(100 * (1 - gamma), 100 * (1 + gamma)), p=p)


def _noise(std: float = 0.05, p: float = 0.5) -> A.BasicTransform:
    """Gaussian noise with a standard deviation of up to ``std`` of the image's range."""
    return A.GaussNoise(std_range=(0.0, std), p=p)


def _blur(sigma: float = 1.5, p: float = 0.5) -> A.BasicTransform:
    """Gaussian blur (defocus) with a sigma between ``sigma / 2`` and ``sigma`` pixels."""
    return A.GaussianBlur(blur_limit=0, sigma_limit=(sigma / 2, sigma), p=p)


TRANSFORMS: dict[str, Callable[..., A.BasicTransform]] = {
    "hflip": _hflip,
    "vflip": _vflip,
    "rot90": _rot90,
    "rotate": _rotate,
    "elastic": _elastic,
    "affine": _affine,
    "brightness-contrast": _brightness_contrast,
    "gamma": _gamma,
    "noise": _noise,
    "blur": _blur,
}

AugmentSpec = str | dict[str, dict[str, Any]]


def parse_augment_option(value: str) -> list[AugmentSpec]:
    """``--augment``: a comma-separated list of names, or a YAML file of tuned transforms."""
    if value.lower().endswith((".yaml", ".yml")):
        return load_augment_file(Path(value))
    return [v.strip() for v in value.split(",") if v.strip()]


def load_augment_file(path: Path) -> list[AugmentSpec]:
    """Read a YAML list such as ``[hflip, {elastic: {std: 8, p: 0.3}}]`` (or a mapping)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"augmentation file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {first_line(exc)}") from None
    if isinstance(raw, dict):
        raw = [{name: params or {}} for name, params in raw.items()]
    if not isinstance(raw, list):
        raise UserError(
            f"{path} must list transforms, e.g. '- hflip' and '- elastic: {{std: 8, p: 0.3}}'"
        )
    specs = [_spec(item, str(path)) for item in raw]
    specs = [name if not params else {name: params} for name, params in specs]
    build_augmenter(specs, source=str(path))  # bad parameters are reported with the file now
    return specs


def _spec(item: AugmentSpec, source: str) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        ((name, params),) = item.items()
        if params is None or isinstance(params, dict):
            return str(name), dict(params or {})
    raise UserError(
        f"{source}: cannot read augmentation {item!r}; write a name, or name: {{parameter: value}}"
    )


def build_augmenter(
    specs: list[AugmentSpec], seed: int | None = None, source: str | None = None
) -> A.Compose | None:
    """Compose the named transforms; an empty list (or ``none``) means no augmentation.

    ``source`` (the ``--augment`` file) starts every error message, so the user knows
    which file to fix.
    """
    where = f"{source}: " if source else ""
    parsed = [_spec(item, source or "augment") for item in specs]
    parsed = [(n, p) for n, p in parsed if n != "none"]
    unknown = [n for n, _ in parsed if n not in TRANSFORMS]
    if unknown:
        raise UserError(
            f"{where}unknown augmentation(s) {', '.join(unknown)}; "
            f"choose from {', '.join(TRANSFORMS)}"
        )
    if not parsed:
        return None
    return A.Compose(
        [_make(name, params, where) for name, params in parsed],
        additional_targets={"weight": "mask"},
        seed=seed,
    )


def _make(name: str, params: dict[str, Any], where: str) -> A.BasicTransform:
    """One transform, its parameters checked by name and type before albumentations sees them.

    Albumentations' own checks (pydantic) report a wrong type as several errors about
    its internal schema, naming neither our parameter nor the file.
    """
    factory = TRANSFORMS[name]
    allowed = list(inspect.signature(factory).parameters)
    wrong = [k for k in params if k not in allowed]
    if wrong:
        raise UserError(
            f"{where}augmentation {name} has no parameter(s) {', '.join(map(str, wrong))}; "
            f"it takes {', '.join(allowed)}"
        )
    hints = typing.get_type_hints(factory)
    values = {}
    for key, value in params.items():
        try:
            values[key] = coerce(value, hints[key])
        except ValueError:
            raise UserError(
                f"{where}augmentation {name}: {key} must be {describe_type(hints[key])}, "
                f"not {value!r:.60}"
            ) from None
    try:
        return factory(**values)
    except ValueError as exc:
        raise UserError(f"{where}augmentation {name} with {params}: {_reason(exc)}") from None


def _reason(exc: ValueError) -> str:
    """The first problem in one line: ``parameter: message`` for albumentations' checks."""
    cause = exc.__cause__ if isinstance(exc.__cause__, pydantic.ValidationError) else exc
    if isinstance(cause, pydantic.ValidationError) and cause.errors():
        first = cause.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return first_line(exc)


def apply(
    augmenter: A.Compose | None, image: np.ndarray, target: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment an (H, W, C) image, (H, W, K) target and (H, W, 1) weight alike.

    The image comes back as float32 in its original value range, whatever its dtype.
    """
    image = np.asarray(image, np.float32)
    if augmenter is None:
        return image, target, weight
    low, high = float(image.min()), float(image.max())
    scale = high - low if high > low else 1.0
    out = augmenter(image=(image - low) / scale, mask=target, weight=weight)
    return out["image"] * scale + low, out["mask"], out["weight"]
