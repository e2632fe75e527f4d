"""Vertebra corner geometry shared by the data and measurement layers.

It lives here, at the package's floor (numpy and :mod:`r2mfnet.errors` only), because both sides
need it: the synthetic generator and the SpineWeb16 adapter (``r2mfnet.data``) write landmarks and
their Cobb angles, and ``r2mfnet.measure`` measures them. Kept in ``measure``, the data layer had
to import upwards; kept in ``data``, measurement would depend on a data set adapter for plain
geometry.

Landmarks are an array of shape ``(N, 4, 2)`` (17 vertebrae T1..L5 top to bottom in every data
set here), 4 corners each in the order top-left, top-right, bottom-left, bottom-right, as pixel
``(x, y)`` (image coordinates, y down). A vertebra's *mid-line* joins the midpoint of its left edge
(TL, BL) to the midpoint of its right edge (TR, BR).

The main Cobb angle follows the definition that reproduces SpineWeb16's ``angles.csv`` column 1:
the largest angle between the mid-lines of any two vertebrae.
"""
from __future__ import annotations

import numpy as np

from r2mfnet.errors import MeasurementError

__all__ = ["check_corners", "vertebra_tilts_deg", "cobb_from_landmarks", "order_corners"]


def check_corners(corners: np.ndarray) -> np.ndarray:
    """``corners`` as float64 ``(N>=2, 4, 2)``; :class:`MeasurementError` for any other shape or
    a non-finite coordinate, so every landmark consumer rejects bad input with the same message."""
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
    return midline_tilt_deg(check_corners(corners))


def midline_tilt_deg(corners: np.ndarray) -> np.ndarray:
    """:func:`vertebra_tilts_deg` without the shape check, for any leading shape ``(..., 4, 2)``
    (TL, TR, BL, BR): the direction from the left side's midpoint to the right side's. Also used
    on corners in a crop's coordinates (:mod:`r2mfnet.data.vertebra_crops`), whose axes are equal
    in scale, so the angle is the same rule."""
    c = np.asarray(corners, dtype=np.float64)
    d = 0.5 * (c[..., 1, :] + c[..., 3, :]) - 0.5 * (c[..., 0, :] + c[..., 2, :])
    return np.degrees(np.arctan2(d[..., 1], d[..., 0]))


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


def order_corners(quad: np.ndarray, axis: np.ndarray | None = None) -> np.ndarray:
    """Reorder the 4 corners of one vertebra to TL, TR, BL, BR.

    ``axis`` is the local direction of the spine pointing down (caudally); default straight down
    ``(0, 1)``. Corners are sorted by angle around their centre (a simple polygon); of its two
    pairs of opposite edges, the pair more perpendicular to the axis are the endplates; the
    cranial one gives TL/TR, the caudal one BL/BR; left/right follow the image's x direction
    turned with the axis. Robust to strong vertebral tilt when the local axis is given.
    """
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    u = np.array([0.0, 1.0]) if axis is None else np.asarray(axis, dtype=np.float64).reshape(2)
    norm = float(np.hypot(*u))
    u = np.array([0.0, 1.0]) if not np.isfinite(norm) or norm < 1e-9 else u / norm
    v = np.array([u[1], -u[0]])  # "rightwards" for a downward axis
    c = q.mean(axis=0)
    ring = q[np.argsort(np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0]), kind="stable")]
    edges = [(ring[i], ring[(i + 1) % 4]) for i in range(4)]

    def along_axis(e) -> float:  # |cos| between the edge and the axis: 0 = perpendicular
        d = e[1] - e[0]
        return abs(float(d @ u)) / (float(np.hypot(*d)) + 1e-12)

    pair_a, pair_b = (edges[0], edges[2]), (edges[1], edges[3])
    sa = along_axis(pair_a[0]) + along_axis(pair_a[1])
    sb = along_axis(pair_b[0]) + along_axis(pair_b[1])
    e1, e2 = pair_a if sa <= sb else pair_b
    d1 = float((e1[0] + e1[1]) @ u)
    d2 = float((e2[0] + e2[1]) @ u)
    top, bottom = (e1, e2) if d1 <= d2 else (e2, e1)
    tl, tr = sorted(top, key=lambda p: float(p @ v))
    bl, br = sorted(bottom, key=lambda p: float(p @ v))
    return np.stack([tl, tr, bl, br])
