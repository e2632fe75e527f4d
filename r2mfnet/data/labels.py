"""Vertebra label maps (18 classes: 0 background, 1..17 = T1..L5) from landmarks JSON.

Both the synthetic generator and the SpineWeb16 adapter write, per view, a landmarks JSON with
the four corners (TL, TR, BL, BR) of each vertebra T1..L5 (``docs/data.md``). The binary spine
mask is the union of those quadrilaterals; here each quadrilateral is painted with its own class.

Rules (``docs/vertebrae.md``):

* **Class index** = position of the vertebra's level name in :data:`~r2mfnet.data.views.LEVELS`
  plus 1 (T1 = 1, ..., L5 = 17), taken from the JSON's ``"levels"`` (default T1..L5 in order).
* **Polygon** = TL, TR, BR, BL, filled with OpenCV in 1/16-pixel fixed point, exactly as both
  mask writers fill it, so that the union of the classes equals their binary mask (tested).
* **Overlaps** (neighbouring quadrilaterals that overlap, a quirk of some SpineWeb16 labels): a
  pixel covered by several quadrilaterals goes to the one whose **centre is nearest**, so the
  overlap is split down its middle instead of being given wholesale to the upper or the lower
  vertebra (which would depend on painting order).
* **Letterbox** (:func:`letterbox_labels`): foreground = the binary mask letterboxed exactly as
  :meth:`~r2mfnet.data.preprocess.LetterboxTransform.apply_mask` does it (area resize, >= 0.5),
  class of a foreground pixel = the vertebra covering most of it (per-class area resize, argmax).
  So ``labels > 0`` is exactly the letterboxed binary mask, and classes stay integers (no
  interpolated in-between labels). Augmentation afterwards uses nearest neighbour.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from r2mfnet.data.views import LEVELS
from r2mfnet.errors import DataError

__all__ = [
    "LABEL_NAMES",
    "NUM_VERTEBRA_CLASSES",
    "label_of_level",
    "labels_to_mask",
    "letterbox_labels",
    "rasterize_labels",
    "read_landmarks",
    "read_label_map",
]

LABEL_NAMES: tuple[str, ...] = ("background", *LEVELS)
"""Class names by index: 0 background, 1..17 T1..L5."""
NUM_VERTEBRA_CLASSES = len(LABEL_NAMES)  # 18

_SHIFT = 4  # 1/16-pixel fixed point, as r2mfnet.data.synthetic.raster and spineweb16.mask_from_quads


def label_of_level(level: str) -> int:
    """Class index of a level name (``"T1"`` -> 1, ``"L5"`` -> 17)."""
    try:
        return LEVELS.index(level) + 1
    except ValueError:
        raise DataError(f"unknown vertebra level '{level}'; expected one of {', '.join(LEVELS)}") from None


def read_landmarks(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """``(corners [N, 4, 2] float64 (TL, TR, BL, BR), level names)`` of a landmarks JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        corners = np.asarray(data["corners"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"unreadable landmarks JSON ({type(exc).__name__}: {str(exc)[:120]})", path) from None
    if corners.ndim != 3 or corners.shape[1:] != (4, 2) or len(corners) == 0:
        raise DataError(f"landmarks 'corners' must be [N][4][2], got shape {corners.shape}", path)
    if not np.all(np.isfinite(corners)):
        raise DataError("landmarks contain NaN or infinite coordinates", path)
    levels = data.get("levels") if isinstance(data, dict) else None
    if levels is None:
        if len(corners) != len(LEVELS):
            raise DataError(f"{len(corners)} vertebrae without a 'levels' list (17 = T1..L5 expected)", path)
        levels = list(LEVELS)
    levels = [str(v) for v in levels]
    if len(levels) != len(corners):
        raise DataError(f"{len(levels)} level names for {len(corners)} vertebrae", path)
    if len(set(levels)) != len(levels):
        raise DataError(f"repeated level names in {levels}", path)
    for name in levels:
        if name not in LEVELS:
            raise DataError(f"unknown vertebra level '{name}'; expected one of {', '.join(LEVELS)}", path)
    return corners, levels


def _polygon(quad: np.ndarray) -> np.ndarray:
    """TL, TR, BL, BR -> fixed-point TL, TR, BR, BL polygon (a simple polygon)."""
    ring = np.asarray(quad, dtype=np.float64)[[0, 1, 3, 2]]
    return np.round(ring * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def rasterize_labels(
    corners: np.ndarray, shape_hw: tuple[int, int], levels: Sequence[str] | None = None
) -> np.ndarray:
    """Label map (uint8 HxW): 0 background, ``label_of_level(level)`` inside each vertebra.

    ``corners`` is ``[N, 4, 2]`` (TL, TR, BL, BR, pixel x, y); ``levels`` their names (default
    T1..L5). Overlapping pixels go to the vertebra with the nearest centre (module docstring).
    """
    import cv2

    c = np.asarray(corners, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != (4, 2):
        raise DataError(f"corners must be [N][4][2], got shape {c.shape}")
    names = list(levels) if levels is not None else list(LEVELS[: len(c)])
    if len(names) != len(c):
        raise DataError(f"{len(names)} level names for {len(c)} vertebrae")
    h, w = int(shape_hw[0]), int(shape_hw[1])
    out = np.zeros((h, w), np.uint8)
    best = np.full((h, w), np.inf, np.float32)  # squared distance to the owning vertebra's centre
    for quad, name in zip(c, names):
        value = label_of_level(name)
        x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x0 >= x1 or y0 >= y1:
            continue  # entirely outside the image
        tile = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shifted = quad - np.array([x0, y0], dtype=np.float64)
        cv2.fillPoly(tile, [_polygon(shifted)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        inside = tile.astype(bool)
        if not inside.any():
            continue
        cx, cy = quad.mean(axis=0)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2).astype(np.float32)
        sub_best = best[y0:y1, x0:x1]
        take = inside & (d2 < sub_best)
        sub_best[take] = d2[take]
        out[y0:y1, x0:x1][take] = value
    return out


def read_label_map(landmarks_path: str | Path, shape_hw: tuple[int, int]) -> np.ndarray:
    """The label map of one view from its landmarks JSON, at the image's size ``shape_hw``."""
    corners, levels = read_landmarks(landmarks_path)
    return rasterize_labels(corners, shape_hw, levels)


def labels_to_mask(labels: np.ndarray) -> np.ndarray:
    """Binary spine mask (bool) = union of all vertebra classes."""
    return np.asarray(labels) > 0


def letterbox_labels(transform, labels: np.ndarray) -> np.ndarray:
    """Letterbox a label map with ``transform`` (a :class:`LetterboxTransform`) -> uint8 [H, W].

    Foreground is ``transform.apply_mask(labels > 0)`` (the binary mask's own letterbox); each
    foreground pixel takes the class with the largest area-resized share. See module docstring.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"letterbox_labels expects a 2-D label map, got shape {lab.shape}")
    fg = transform.apply_mask(lab > 0)
    out = np.zeros(fg.shape, np.uint8)
    best = np.zeros(fg.shape, np.float32)
    for value in np.unique(lab):
        if value == 0:
            continue
        share = transform.apply_image((lab == value).astype(np.float32))
        take = share > best
        best[take] = share[take]
        out[take] = value
    out[~fg] = 0
    # A foreground pixel with no positive share cannot occur (fg needs share sum >= 0.5).
    return out
