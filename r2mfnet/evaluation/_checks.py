"""Input checks shared by the metric functions (internal)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def as_bool_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as a bool array; accept bool, or numbers that are all 0 or 1.

    Anything else (probabilities, labels 0/255) raises ``ValueError``: silently thresholding
    would hide a caller's bug, so the caller must binarise first.
    """
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a bool or 0/1 numeric array, got dtype {arr.dtype}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must be binary (0/1 or bool); binarise probabilities first")
    return arr.astype(bool)


def check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool, same shape, at least 1-D; raise ``ValueError`` otherwise."""
    p = as_bool_mask(pred, "pred")
    g = as_bool_mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} differs from gt shape {g.shape}")
    if p.ndim < 1:
        raise ValueError("masks must have at least one dimension")
    return p, g


def check_spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Per-axis spacing tuple (1.0 everywhere when ``None``); positive and finite."""
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        vals = (float(spacing),) * ndim  # type: ignore[arg-type]
    else:
        vals = tuple(float(s) for s in spacing)  # type: ignore[union-attr]
        if len(vals) != ndim:
            raise ValueError(f"spacing has {len(vals)} values for a {ndim}-D mask")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"spacing must be positive and finite, got {spacing!r}")
    return vals
