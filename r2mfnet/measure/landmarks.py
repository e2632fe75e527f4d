"""Cobb angle from vertebra corner landmarks: the reference measurement.

Landmarks are an array of shape ``(17, 4, 2)``: 17 vertebrae (T1..L5, top to bottom), 4 corners
each in the order top-left, top-right, bottom-left, bottom-right, as pixel ``(x, y)``.

The main Cobb angle follows the definition that reproduces SpineWeb16's ``angles.csv`` column 1:
the largest angle between the mid-lines of any two vertebrae, a vertebra's mid-line joining the
midpoint of its left edge (top-left, bottom-left) to the midpoint of its right edge.
"""
from __future__ import annotations

import numpy as np

from r2mfnet.errors import MeasurementError


def _check(corners: np.ndarray) -> np.ndarray:
    corners = np.asarray(corners, dtype=np.float64)
    if corners.ndim != 3 or corners.shape[1:] != (4, 2) or corners.shape[0] < 2:
        raise MeasurementError(f"landmarks must have shape (N>=2, 4, 2), got {corners.shape}")
    if not np.all(np.isfinite(corners)):
        raise MeasurementError("landmarks contain NaN or infinite coordinates")
    return corners


def vertebra_tilts_deg(corners: np.ndarray) -> np.ndarray:
    """Tilt of each vertebra's mid-line in degrees, in image coordinates (y down).

    Positive means the right end is lower than the left end. Values lie in (-90, 90].
    """
    c = _check(corners)
    left = (c[:, 0] + c[:, 2]) / 2.0
    right = (c[:, 1] + c[:, 3]) / 2.0
    d = right - left
    return np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def cobb_from_landmarks(corners: np.ndarray) -> tuple[float, int, int]:
    """Main Cobb angle (degrees) and the indices of the two vertebrae that bound it.

    Returns ``(angle, upper_index, lower_index)`` with ``upper_index < lower_index``.
    """
    tilts = vertebra_tilts_deg(corners)
    diff = np.abs(tilts[:, None] - tilts[None, :])
    diff = np.minimum(diff, 180.0 - diff)  # mid-lines are undirected
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    upper, lower = (int(i), int(j)) if i < j else (int(j), int(i))
    return float(diff[i, j]), upper, lower
