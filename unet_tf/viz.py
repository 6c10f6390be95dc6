"""Pictures a person checks: overlays and image | truth | prediction | overlay panels.

Colours follow the papers' figures: with ground truth, true positives are green,
false positives magenta and false negatives cyan, so errors stand out at a glance;
without it, the prediction is tinted yellow with its outline drawn.
"""

from __future__ import annotations

import cv2
import numpy as np

TP, FP, FN, PRED = (40, 200, 60), (230, 40, 200), (40, 210, 230), (250, 220, 30)
TITLE_HEIGHT = 22


def contrast_stretch(image: np.ndarray) -> np.ndarray:
    """Map the 1st-99th percentile of ``image`` to [0, 1] (float32, clipped)."""
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, [1, 99])
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def display_rgb(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch any (H, W[, C]) image to uint8 RGB (1st-99th percentile).

    Grey shows grey; of more channels, the first three show as red, green and blue.
    """
    image = np.asarray(image)
    image = image[..., None] if image.ndim == 2 else image[..., :3]
    scaled = (contrast_stretch(image) * 255).astype(np.uint8)
    if scaled.shape[-1] == 1:
        return np.repeat(scaled, 3, axis=-1)
    # Two fluorescence channels show as red and green, blue left dark.
    return np.pad(scaled, ((0, 0), (0, 0), (0, 3 - scaled.shape[-1])))


def _blend(base: np.ndarray, where: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    base[where] = ((1 - alpha) * base[where] + alpha * np.array(colour)).astype(np.uint8)


def overlay(
    image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None, alpha: float = 0.45
) -> np.ndarray:
    """The image with the prediction (and, if known, its errors) painted on."""
    base = display_rgb(image)
    pred = pred.astype(bool)
    if truth is None:
        _blend(base, pred, PRED, alpha)
        contours, _ = cv2.findContours(pred.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(base, contours, -1, PRED, 1)
        return base
    truth = truth.astype(bool)
    _blend(base, pred & truth, TP, alpha)
    _blend(base, pred & ~truth, FP, 0.7)
    _blend(base, ~pred & truth, FN, 0.7)
    return base


def instance_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.3) -> np.ndarray:
    """The image with each object tinted and outlined in its own colour.

    A binary overlay shows two touching cells as one blob; distinct colours and
    outlines show whether ``--instances`` told them apart.
    """
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    base = display_rgb(image)
    if not labels.any():
        return base
    colours = (label2rgb(labels, bg_label=0) * 255).astype(np.uint8)
    inside = labels > 0
    _blend_each(base, inside, colours, alpha)
    edges = find_boundaries(labels, mode="inner")
    base[edges] = colours[edges]
    return base


def _blend_each(base: np.ndarray, where: np.ndarray, colours: np.ndarray, alpha: float) -> None:
    base[where] = ((1 - alpha) * base[where] + alpha * colours[where]).astype(np.uint8)


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    strip = np.full((TITLE_HEIGHT, tile.shape[1], 3), 255, np.uint8)
    scale = 0.5 if tile.shape[1] >= 200 else 0.35
    cv2.putText(strip, title, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def panel(
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Side by side: input | ground truth (if known) | prediction | overlay.

    With object ``labels`` (``--instances``) the overlay outlines each object in its
    own colour instead of painting the binary mask.
    """
    mask_rgb = lambda m: np.repeat((m.astype(bool) * 255).astype(np.uint8)[..., None], 3, -1)  # noqa: E731
    tiles = [("input", display_rgb(image))]
    if truth is not None:
        tiles.append(("ground truth", mask_rgb(truth)))
    tiles.append(("prediction", mask_rgb(pred)))
    if labels is not None:
        tiles.append((f"objects: {int(labels.max(initial=0))}", instance_overlay(image, labels)))
    else:
        legend = "overlay: TP green, FP magenta, FN cyan" if truth is not None else "overlay"
        tiles.append((legend, overlay(image, pred, truth)))
    gap = np.full((image.shape[0] + TITLE_HEIGHT, 4, 3), 255, np.uint8)
    parts = []
    for title, tile in tiles:
        parts += [_titled(tile, title), gap]
    return np.concatenate(parts[:-1], axis=1)
