"""Boundary-based metrics: boundary F1 (BF score), HD95 and ASSD.

Boundary pixels
    A mask's boundary is the mask minus its binary erosion by the 4-connected (cross-shaped)
    structuring element, with everything outside the image counted as background. So a boundary
    pixel is a foreground pixel with at least one 4-neighbour in the background or off the
    image; the resulting contour is one pixel thick and 8-connected. A mask thinner than three
    pixels is all boundary.

Distances
    Distances are Euclidean between pixel centres, from ``scipy.ndimage.distance_transform_edt``
    of the complement of the other mask's boundary with ``sampling=spacing``: millimetres when a
    pixel spacing is given, pixels otherwise. The boundary F1 functions here take their tolerance
    in pixels; which tolerance a case gets (fixed pixels, millimetres or a fraction of the image
    height) is decided by ``tolerance.BoundaryTolerance``.

Empty masks (see ``docs/metrics.md``)
    Both empty: BF = 1, HD95 = ASSD = 0 (perfect agreement). Exactly one empty: BF = 0 and
    HD95 = ASSD = NaN (undefined: there is no surface to measure to); ``summaries.summarize`` counts
    these as ``n_failed`` instead of silently averaging them away.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import ndimage

from r2mfnet.evaluation._checks import as_bool_mask, check_pair, check_spacing

Spacing = float | Sequence[float] | None


def boundary(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of ``mask``: mask AND NOT erosion (4-connected element, outside = 0)."""
    m = as_bool_mask(mask, "mask")
    if not m.any():
        return np.zeros_like(m)
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    eroded = ndimage.binary_erosion(m, structure=structure, border_value=0)
    return m & ~eroded


def _distance_to(target_boundary: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance from every pixel to the nearest pixel of ``target_boundary`` (non-empty)."""
    return ndimage.distance_transform_edt(~target_boundary, sampling=spacing)


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None
) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances ``(pred -> gt, gt -> pred)`` as 1-D arrays.

    Either array is empty when the corresponding boundary is empty; callers decide what that
    means (see the module docstring).
    """
    p, g = check_pair(pred, gt)
    sp = check_spacing(spacing, p.ndim)
    bp, bg = boundary(p), boundary(g)
    if not bp.any() or not bg.any():
        return np.zeros(0), np.zeros(0)
    d_pg = _distance_to(bg, sp)[bp]
    d_gp = _distance_to(bp, sp)[bg]
    return d_pg, d_gp


def _check_tau(tau: float) -> float:
    if not (math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau must be >= 0 pixels, got {tau}")
    return float(tau)


def boundary_f1(pred: np.ndarray, gt: np.ndarray, tau: float) -> float:
    """Boundary F1 (BF score, Csurka et al. 2013) at tolerance ``tau`` pixels.

    Precision = fraction of predicted boundary pixels within ``tau`` (inclusive) of the ground
    truth boundary; recall = fraction of ground-truth boundary pixels within ``tau`` of the
    predicted boundary; BF = 2PR / (P + R), 0 when P + R = 0. Both masks empty -> 1.0; one empty
    -> 0.0. ``tau`` has no default: the right value depends on the image (see
    ``tolerance.BoundaryTolerance``).
    """
    p, g = check_pair(pred, gt)
    t = _check_tau(tau)
    bp, bg = boundary(p), boundary(g)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    unit = (1.0,) * p.ndim
    # A tiny slack so that a distance equal to tau (e.g. sqrt(2) vs tau=sqrt(2)) counts.
    eps = 1e-9
    precision = float(np.mean(_distance_to(bg, unit)[bp] <= t + eps))
    recall = float(np.mean(_distance_to(bp, unit)[bg] <= t + eps))
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the two boundaries.

    ``max(P95(d(pred->gt)), P95(d(gt->pred)))`` with numpy's linear-interpolation percentile (the
    MONAI definition). Units: mm with ``spacing``, else pixels. Both empty -> 0.0; one empty ->
    NaN.
    """
    p, g = check_pair(pred, gt)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float("nan")
    d_pg, d_gp = surface_distances(p, g, spacing)
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))


def assd(pred: np.ndarray, gt: np.ndarray, spacing: Spacing = None) -> float:
    """Average symmetric surface distance: mean of all boundary distances in both directions.

    ``(sum d(pred->gt) + sum d(gt->pred)) / (|B_pred| + |B_gt|)``. Units: mm with ``spacing``,
    else pixels. Both empty -> 0.0; one empty -> NaN.
    """
    p, g = check_pair(pred, gt)
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float("nan")
    d_pg, d_gp = surface_distances(p, g, spacing)
    return float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size))


def boundary_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    tau: float,
    spacing: Spacing = None,
) -> dict[str, float]:
    """``{"boundary_f1", "hd95", "assd"}`` computed from one pair of distance maps.

    Same definitions and empty-mask rules as :func:`boundary_f1`, :func:`hd95` and :func:`assd`;
    this only avoids computing the distance transforms three times on large radiographs. ``tau``
    is in pixels whatever the spacing; ``spacing`` scales only HD95 and ASSD.
    """
    p, g = check_pair(pred, gt)
    t = _check_tau(tau)
    sp = check_spacing(spacing, p.ndim)
    bp, bg = boundary(p), boundary(g)
    if not bp.any() and not bg.any():
        return {"boundary_f1": 1.0, "hd95": 0.0, "assd": 0.0}
    if not bp.any() or not bg.any():
        return {"boundary_f1": 0.0, "hd95": float("nan"), "assd": float("nan")}
    unit = (1.0,) * p.ndim
    d_pg_px = _distance_to(bg, unit)[bp]
    d_gp_px = _distance_to(bp, unit)[bg]
    eps = 1e-9
    precision = float(np.mean(d_pg_px <= t + eps))
    recall = float(np.mean(d_gp_px <= t + eps))
    bf = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    if len(set(sp)) == 1:  # isotropic: scale the pixel distances
        d_pg, d_gp = d_pg_px * sp[0], d_gp_px * sp[0]
    else:
        d_pg = _distance_to(bg, sp)[bp]
        d_gp = _distance_to(bp, sp)[bg]
    return {
        "boundary_f1": bf,
        "hd95": float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))),
        "assd": float((d_pg.sum() + d_gp.sum()) / (d_pg.size + d_gp.size)),
    }
