"""The plain folder format: ``images/`` and ``masks/`` paired by file stem."""

from __future__ import annotations

from pathlib import Path

from unet_tf.data.checks import load_all
from unet_tf.data.io import (
    IMAGE_SUFFIXES,
    is_image_file,
    natural_key,
    read_image,
    read_image_and_pixel_size,
    to_channels,
    to_label,
)
from unet_tf.data.sample import Sample
from unet_tf.errors import UserError, list_some

IMAGE_DIRS = ("images", "image")
MASK_DIRS = ("masks", "labels", "label")


def find_subdir(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def is_folder_dataset(root: Path) -> bool:
    return find_subdir(root, IMAGE_DIRS) is not None


def list_images(directory: Path) -> list[Path]:
    """The image files of ``directory`` in natural order (``img2`` before ``img10``)."""
    images = [p for p in directory.iterdir() if is_image_file(p)]
    return sorted(images, key=lambda p: natural_key(p.name))


def pair_files(root: Path, require_masks: bool = True) -> list[tuple[Path, Path | None]]:
    """Pair ``images/x.*`` with ``masks/x.*``; every unpaired file is an error."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"data folder not found: {root}")
    image_dir = find_subdir(root, IMAGE_DIRS)
    if image_dir is None:
        raise UserError(
            f"{root} has no images/ folder; put the images in {root}/images/ and the "
            f"masks, with the same file names, in {root}/masks/"
        )
    mask_dir = find_subdir(root, MASK_DIRS)
    if mask_dir is None and require_masks:
        raise UserError(f"{root} has no masks/ folder; put one mask per image in {root}/masks/")
    images = list_images(image_dir)
    if not images:
        raise UserError(
            f"no images in {image_dir} (looked for {', '.join(IMAGE_SUFFIXES)}); add images there"
        )
    masks = {p.stem: p for p in list_images(mask_dir)} if mask_dir else {}
    _check_unique_stems(images, image_dir)
    pairs = [(p, masks.get(p.stem)) for p in images]
    if require_masks:
        missing = [p.name for p, m in pairs if m is None]
        if missing:
            raise UserError(
                f"{len(missing)} image(s) in {image_dir} have no mask in {mask_dir}: "
                f"{list_some(missing)}; add masks with the same file names or remove the images"
            )
        orphans = sorted(set(masks) - {p.stem for p in images})
        if orphans:
            names = [masks[s].name for s in orphans]
            raise UserError(
                f"{len(names)} mask(s) in {mask_dir} have no image in {image_dir}: "
                f"{list_some(names)}; add the images or remove the masks"
            )
    return pairs


def _check_unique_stems(paths: list[Path], directory: Path) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for p in paths:
        if p.stem in seen:
            clashes.append(f"{seen[p.stem]} / {p.name}")
        seen[p.stem] = p.name
    if clashes:
        raise UserError(
            f"files in {directory} share a name but differ in extension: {list_some(clashes)}; "
            "keep one file per name"
        )


def load_pair(image_path: Path, mask_path: Path | None) -> Sample:
    """Read one image and its mask, checking that their sizes agree."""
    image, pixel_size = read_image_and_pixel_size(image_path)
    image = to_channels(image)
    mask = None
    if mask_path is not None:
        mask = to_label(read_image(mask_path), mask_path)
        if mask.shape != image.shape[:2]:
            raise UserError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image_path.name} is {image.shape[1]}x{image.shape[0]}; masks must match "
                "their images pixel for pixel"
            )
    return Sample(
        name=image_path.stem,
        image=image,
        mask=mask,
        path=str(image_path),
        pixel_size=pixel_size,
    )


def read_folder(root: Path | str, require_masks: bool = True) -> list[Sample]:
    """Read every image (and mask) of a folder dataset into memory."""
    pairs = pair_files(Path(root), require_masks)
    return load_all(pairs, lambda pair: load_pair(*pair), lambda pair: pair[0].name)
