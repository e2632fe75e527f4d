"""The three AASCE / SpineWeb16 ``angles.csv`` angles, by the challenge's own rule.

SpineWeb16's ``angles.csv`` (and the AASCE 2019 challenge, scored by SMAPE) gives three angles
per radiograph, labelled PT, MT and TL/L, computed by the challenge's MATLAB script from the 17
vertebra mid-lines (left-edge midpoint to right-edge midpoint). They are **not** anatomical
regional angles. With the tilts of the vertebra mid-lines:

1. the largest angle between any two vertebrae; its two vertebrae are the "upper" and "lower"
   end (this is :func:`~r2mfnet.measure.landmarks.cobb_from_landmarks`);
2. and 3. depend on whether the spine is S-shaped. The test (``isS``) asks whether the 34
   end-plate midpoints lie on both sides of the line joining the first and the last one.

   - not S: angle 2 = angle between the first vertebra and the upper end, angle 3 = angle
     between the last vertebra and the lower end;
   - S, and the two ends' bottom end-plate midpoints average above the middle of the image:
     angle 2 = largest angle between the upper end and a vertebra above it, angle 3 = largest
     angle between the lower end and a vertebra below it;
   - S otherwise: angle 2 as before (the curve above the main curve, whose upper end is then
     vertebra ``k``), angle 3 = largest angle between ``k`` and a vertebra above it.

:func:`aasce_angles` implements that rule on any ordered sequence of samples (each with a tilt and
a point on the spine), so the same definition applies to landmarks (17 vertebrae, which
reproduces ``angles.csv``) and to the tilt profile measured from a mask (every centreline sample
plays the part of a vertebra). Angles between samples are plain tilt differences, as the script's
``acos`` of the mid-line vectors' cosine is when all mid-lines point to the image right.
"""
from __future__ import annotations

import numpy as np

from r2mfnet.errors import MeasurementError
from r2mfnet.geometry import check_corners, vertebra_tilts_deg


def is_s_shaped(points: np.ndarray) -> bool:
    """The challenge script's ``isS``: do the points lie on both sides of the first-last line?

    ``points`` is ``(M, 2)`` (x, y), top to bottom. As in the script, the last two points are not
    tested and each point's signed offset is measured in units normalised by the first-last
    differences; a point exactly on the line counts for neither side.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        raise MeasurementError(f"points must have shape (M>=3, 2), got {p.shape}")
    last = p[-1]
    dy = p[0, 1] - last[1]
    dx = p[0, 0] - last[0]
    eps = 1e-9
    dy = dy if abs(dy) > eps else eps
    dx = dx if abs(dx) > eps else eps
    ll = (p[:-2, 1] - last[1]) / dy - (p[:-2, 0] - last[0]) / dx
    return bool(np.any(ll > 0) and np.any(ll < 0))


def aasce_angles(tilts_deg: np.ndarray, s_points: np.ndarray, end_rows: np.ndarray,
                 image_height: float) -> tuple[float, float, float]:
    """The three ``angles.csv`` angles (degrees) from an ordered tilt sequence.

    ``tilts_deg`` (N,) top to bottom; ``s_points`` the (M, 2) points for the S test;
    ``end_rows`` (N,) the row used for each sample in the "upper half of the image" test (for a
    vertebra, the y of its bottom end-plate midpoint); ``image_height`` in pixels.
    """
    t = np.asarray(tilts_deg, dtype=np.float64)
    rows = np.asarray(end_rows, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or rows.shape != t.shape:
        raise MeasurementError("need at least two tilts and one end row per tilt")
    if not np.all(np.isfinite(t)):
        raise MeasurementError("tilts contain NaN or infinite values")
    # Largest pairwise angle; the script's max() returns the first (upper) index of the pair.
    i_max, i_min = int(np.argmax(t)), int(np.argmin(t))
    upper, lower = min(i_max, i_min), max(i_max, i_min)
    a1 = float(t[i_max] - t[i_min])
    if upper == lower:  # all equal: no angle at all
        return 0.0, 0.0, 0.0
    if not is_s_shaped(s_points):
        return a1, float(abs(t[0] - t[upper])), float(abs(t[-1] - t[lower]))
    above = np.abs(t[upper] - t[: upper + 1])
    a2 = float(above.max())
    if rows[upper] + rows[lower] < image_height:
        a3 = float(np.abs(t[lower] - t[lower:]).max())
    else:
        k = int(np.argmax(above))
        a3 = float(np.abs(t[k] - t[: k + 1]).max())
    return a1, a2, a3


def aasce_angles_from_landmarks(corners: np.ndarray, image_height: float) -> tuple[float, float, float]:
    """The three ``angles.csv`` angles from vertebra corners ``(N, 4, 2)`` (TL, TR, BL, BR).

    On SpineWeb16 this reproduces ``angles.csv`` (the evaluation's sanity row checks it).
    """
    c = check_corners(corners)
    tilts = vertebra_tilts_deg(c)
    top_mid = (c[:, 0] + c[:, 1]) / 2.0
    bottom_mid = (c[:, 2] + c[:, 3]) / 2.0
    s_points = np.stack([top_mid, bottom_mid], axis=1).reshape(-1, 2)
    return aasce_angles(tilts, s_points, bottom_mid[:, 1], image_height)


def aasce_angles_from_measurement(cobb, centreline, image_height: float | None = None,
                                  ) -> tuple[float, float, float]:
    """The three ``angles.csv`` angles from a mask measurement (``cobb`` with its centreline).

    Every sample of the measurement's tilt profile plays the part of a vertebra: each centreline
    sample for the centreline method, each vertebra for the end-plate method; its row is the
    centreline's row at its level position. Angle 1 is therefore ``cobb.tilt_range``. The S test
    uses centreline points at the approximate top and bottom of each of the 17 vertebral bodies
    (level positions ``k + 0.1`` and ``k + 0.9``), like the script's 34 end-plate midpoints.
    """
    tilts = np.asarray(cobb.profile_tilt_deg, dtype=np.float64)
    pos = np.asarray(centreline.level_pos, dtype=np.float64)
    q = np.sort(np.concatenate([np.arange(17) + 0.1, np.arange(17) + 0.9]))
    s_points = np.stack([np.interp(q, pos, centreline.xs), np.interp(q, pos, centreline.ys)], axis=1)
    rows = np.interp(np.asarray(cobb.profile_pos, dtype=np.float64), pos, centreline.ys)
    h = float(image_height if image_height is not None else centreline.image_shape[0])
    if h <= 0:
        raise MeasurementError("image height unknown: pass image_height")
    return aasce_angles(tilts, s_points, rows, h)
