"""Tilt of each vertebra from the mask's own shape: the end-plate method (``method="vertebrae"``).

Why
    The centreline method (:mod:`r2mfnet.measure.centreline`) takes a vertebra's tilt to be
    perpendicular to the spine's centreline. In real scoliotic spines it is not: vertebrae are
    wedged, translate sideways and rotate, so the centreline turns more than the end plates do.
    On SpineWeb16's ground-truth masks the centreline's tilt range overestimates the experts'
    main angle by about a quarter (see ``docs/clinical.md``). Clinicians draw the Cobb angle on
    the **end plates**, and a mask whose vertebrae are separated by discs shows them; this module
    measures them.
How
    1. The mask's main chain of parts (:func:`~r2mfnet.measure.centreline.select_chain`), plus
       vertebra-sized parts close beside the centreline, is cut into vertebrae: each 8-connected
       part is one vertebra, unless it is longer along the spine than ``split_factor`` x the
       typical segment height at its level (vertebrae touching at a corner, or a prediction that
       fills a disc); such a part is cut perpendicular to the centreline at its narrowest points
       (necks between vertebrae). Pixels are assigned to a position along the centreline by
       their nearest centreline sample.
    2. Each vertebra's mid-line tilt: in a frame turned to the current tilt estimate (first: the
       centreline's perpendicular), the upper and lower outlines of the central ``core`` part of
       the vertebra's width (corners left out) are fitted with straight lines; the mid-line tilt
       is the mean of the two end-plate tilts, as the landmark mid-line (left-edge midpoint to
       right-edge midpoint) is the mean of the two end-plate vectors. Three passes re-turn the
       frame. For vertebrae under 40 px wide (small images) the outline's staircase makes the
       fit noisy, and it is blended with the principal axis of the pixels (:func:`shape_tilt`).
    3. The first guess, and the sanity reference, for a piece's tilt is the perpendicular to the
       line through its neighbouring pieces' centres (robust even where the centreline fails at
       a badly drawn end). A piece whose fit strays more than ``max_deviation_deg`` from that
       reference is not shaped like a vertebral body in line with its neighbours and is left
       out. A piece of the main chain still taller than ``merged_factor`` segments (no neck:
       several merged vertebrae) falls back to the centreline's tilt, sampled once per typical
       segment (samples straying as far are dropped); ``VertebraTilt.source`` records which.
    The tilts, at each vertebra's centre and approximate level position, then go through the same
    curve finding as landmarks (:func:`cobb_from_vertebrae`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from r2mfnet.errors import MeasurementError
from r2mfnet.measure.centreline import Centreline, _as_mask, extract_centreline, select_chain
from r2mfnet.measure.cobb import CobbResult, _curves_from_profile, _result
from r2mfnet.measure.levels import level_boundaries

_CHAIN_KEYS = ("size_fraction", "min_component_fraction", "lateral_tolerance", "max_gap_fraction")


@dataclass(frozen=True)
class VertebraTilt:
    """One vertebra (or fallback sample): centre, mid-line tilt, level position, how measured.

    ``source`` is ``"shape"`` (end-plate fit) or ``"centreline"`` (fallback); ``extent`` its
    height perpendicular to its mid-line and ``width`` its extent along it, in pixels (0 for
    fallback samples; the width is what :mod:`r2mfnet.measure.anatomy` compares).
    """

    x: float
    y: float
    tilt_deg: float
    level_pos: float
    source: str
    extent: float
    width: float = 0.0


def _wrap_near(angle: float, ref: float) -> float:
    """``angle`` moved by a multiple of 180 degrees to lie within 90 degrees of ``ref``."""
    return ref + ((angle - ref + 90.0) % 180.0 - 90.0)


def end_plate_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float, core: float = 0.6,
                   passes: int = 3) -> tuple[float, float] | None:
    """Mid-line tilt (degrees, positive = right end lower) and height of one vertebra's pixels.

    ``start_deg`` is the first guess (the centreline's perpendicular). The height is the piece's
    extent (2nd-98th percentile) perpendicular to the fitted mid-line, in pixels: a piece much
    taller than a segment holds several vertebrae. Returns ``None`` when the piece is too small
    to fit (fewer than 3 columns in its core).
    """
    cx, cy = float(xs.mean()), float(ys.mean())
    a = float(start_deg)
    for _ in range(passes):
        r = np.radians(a)
        u = (xs - cx) * np.cos(r) + (ys - cy) * np.sin(r)  # along the end plates (rightwards)
        v = -(xs - cx) * np.sin(r) + (ys - cy) * np.cos(r)  # along the spine (downwards)
        lo, hi = float(u.min()), float(u.max())
        margin = 0.5 * (1.0 - core) * (hi - lo)
        sel = (u >= lo + margin) & (u <= hi - margin)
        if not sel.any():
            return None
        b = np.floor(u[sel] - (lo + margin)).astype(np.int64)
        n = int(b.max()) + 1
        if n < 3:
            return None
        top = np.full(n, np.inf)
        bot = np.full(n, -np.inf)
        np.minimum.at(top, b, v[sel])
        np.maximum.at(bot, b, v[sel])
        ok = np.isfinite(top)
        cols = np.arange(n, dtype=np.float64)[ok]
        if cols.size < 3:
            return None
        s_top = np.polyfit(cols, top[ok], 1)[0]
        s_bot = np.polyfit(cols, bot[ok], 1)[0]
        step = float(np.degrees(0.5 * (np.arctan(s_top) + np.arctan(s_bot))))
        a += step
        if abs(step) < 0.05:
            break
    r = np.radians(a)
    v = -(xs - cx) * np.sin(r) + (ys - cy) * np.cos(r)
    lo_v, hi_v = np.percentile(v, [2, 98])
    return a, float(hi_v - lo_v)


def moment_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float) -> tuple[float, float]:
    """Tilt of the principal axis nearest ``start_deg`` (second moments), and the axis ratio.

    Uses every pixel, so it is robust to the staircase outline of a small vertebra, but it is
    biased by the shape (a wedge or an irregular quadrilateral tips the axes) and undefined for a
    square piece (ratio near 1).
    """
    x = xs - xs.mean()
    y = ys - ys.mean()
    mu20, mu02, mu11 = float((x * x).mean()), float((y * y).mean()), float((x * y).mean())
    major = 0.5 * float(np.degrees(np.arctan2(2.0 * mu11, mu20 - mu02)))
    spread = np.sqrt((mu20 - mu02) ** 2 + 4 * mu11**2)
    l1, l2 = 0.5 * (mu20 + mu02 + spread), 0.5 * (mu20 + mu02 - spread)
    ratio = float(np.sqrt(l1 / l2)) if l2 > 1e-12 else float("inf")
    best = min((major, major + 90.0, major - 90.0),
               key=lambda a: abs((a - start_deg + 90.0) % 180.0 - 90.0))
    return _wrap_near(best, start_deg), ratio


def shape_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float, core: float = 0.6,
               small_px: tuple[float, float] = (20.0, 40.0)) -> tuple[float, float] | None:
    """A vertebra's mid-line tilt and height: end-plate fit, blended with moments when small.

    A binary outline only ``w`` pixels wide gives end-plate slopes to about ``1/w`` radian (the
    staircase), several degrees at 20 px, whereas second moments average over all pixels. Below
    ``small_px[0]`` pixels of width the moment tilt is used, above ``small_px[1]`` the end-plate
    fit, linearly blended between (the moment tilt only when the piece is elongated, axis ratio
    >= 1.2, i.e. has a defined axis).
    """
    fit = end_plate_tilt(ys, xs, start_deg, core)
    if fit is None:
        return None
    tilt, height = fit
    tilt = _wrap_near(tilt, start_deg)
    r = np.radians(tilt)
    u = (xs - xs.mean()) * np.cos(r) + (ys - ys.mean()) * np.sin(r)
    width = float(np.ptp(u))
    lo, hi = small_px
    w_edge = float(np.clip((width - lo) / max(hi - lo, 1e-9), 0.0, 1.0))
    if w_edge < 1.0:
        m_tilt, ratio = moment_tilt(ys, xs, tilt)
        if ratio >= 1.2:
            tilt = w_edge * tilt + (1.0 - w_edge) * m_tilt
    return tilt, height


def _neck_cuts(widths: np.ndarray, s0: int, s1: int, seg: float, split_factor: float) -> list[int]:
    """Cut positions (arc indices) inside ``[s0, s1]`` at the narrowest points, deepest first.

    Cuts are added while some part is longer than ``split_factor`` segments and has, at least
    half a segment from its ends, a point narrower than 75 % of the widths on both sides (a neck
    between two vertebrae); a merged run without necks is left alone.
    """
    w = ndimage.uniform_filter1d(widths.astype(np.float64), size=3)
    cuts: list[int] = []
    min_sep = 0.5 * seg
    tried: set[tuple[int, int]] = set()
    while True:
        bounds = [s0, *sorted(cuts), s1]
        spans = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)
                 if bounds[i + 1] - bounds[i] > split_factor * seg
                 and (bounds[i], bounds[i + 1]) not in tried]
        if not spans:
            return sorted(cuts)
        a, b = max(spans, key=lambda ab: ab[1] - ab[0])
        tried.add((a, b))
        lo, hi = int(a + min_sep), int(b - min_sep)
        if hi <= lo:
            continue
        inner = w[lo : hi + 1]
        k = int(np.argmin(inner))
        peak = min(float(w[a : lo + k + 1].max()), float(w[lo + k : b + 1].max()))
        if inner[k] <= 0.75 * peak:
            cuts.append(lo + k)


def vertebra_tilts(
    mask: np.ndarray,
    centreline: Centreline | None = None,
    *,
    merged_factor: float = 1.5,
    split_factor: float = 1.25,
    max_deviation_deg: float = 35.0,
    min_piece_fraction: float = 0.25,
    lateral_reach: float = 2.0,
    core: float = 0.6,
    level_weights: Sequence[float] | str | None = None,
    **centreline_kwargs,
) -> tuple[Centreline, list[VertebraTilt]]:
    """Centreline and per-vertebra tilts of a spine mask, top to bottom (see the module doc).

    ``centreline_kwargs`` go to :func:`~r2mfnet.measure.centreline.extract_centreline` (the
    chain-selection keys are also used here, so both see the same parts). Besides the main
    chain's parts, parts of vertebra size whose centre lies within ``lateral_reach`` spine
    widths of the centreline, between its ends, are measured too (a strongly curved spine can
    leave a vertebra outside the chain); such a part is dropped if its shape does not give a
    plausible tilt. Pieces smaller than ``min_piece_fraction`` x the median chain part are
    fragments and are left out; parts longer than ``split_factor`` segments are cut at necks.
    """
    m = _as_mask(mask)
    cl = centreline if centreline is not None else extract_centreline(
        m, level_weights=level_weights, **centreline_kwargs)
    chain, _ = select_chain(m, **{k: v for k, v in centreline_kwargs.items() if k in _CHAIN_KEYS})
    n = cl.ys.size
    if n < 3:
        raise MeasurementError("the centreline is too short to measure vertebrae")
    # Typical segment height (vertebra + disc) at each centreline sample, in pixels.
    bounds = level_boundaries(level_weights)
    seg_frac = np.diff(bounds)
    level_idx = np.clip(np.floor(cl.level_pos).astype(int), 0, seg_frac.size - 1)
    seg_px = seg_frac[level_idx] * (n - 1)

    labels, k = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    ys_all, xs_all = np.nonzero(labels)
    lab_all = labels[ys_all, xs_all]
    area = np.bincount(lab_all, minlength=k + 1)
    in_chain = np.bincount(lab_all, weights=chain[ys_all, xs_all], minlength=k + 1) > 0
    tree = cKDTree(np.stack([cl.xs, cl.ys], axis=1))
    dist_all, arc_all = tree.query(np.stack([xs_all, ys_all], axis=1).astype(np.float64))
    arc_all = np.asarray(arc_all, dtype=np.int64)
    cx = np.bincount(lab_all, weights=xs_all, minlength=k + 1) / np.maximum(area, 1)
    cy = np.bincount(lab_all, weights=ys_all, minlength=k + 1) / np.maximum(area, 1)
    chain_areas = area[1:][in_chain[1:]]
    med_chain = float(np.median(chain_areas)) if chain_areas.size else float(area[1:].max())
    width = cl.median_width() or 1.0
    c_dist, c_arc = tree.query(np.stack([cx, cy], axis=1))
    candidate = in_chain.copy()
    for c in range(1, k + 1):
        if in_chain[c] or not min_piece_fraction * med_chain <= area[c] <= 4.0 * med_chain:
            continue
        inside = cl.top <= cy[c] <= cl.bottom  # between the spine's ends
        candidate[c] = inside and c_dist[c] <= lateral_reach * width

    pieces: list[tuple[np.ndarray, bool]] = []  # (pixel indices, in the main chain)
    order = np.argsort(lab_all, kind="stable")
    splits = np.searchsorted(lab_all[order], np.arange(1, k + 2))
    for c in range(1, k + 1):
        if not candidate[c]:
            continue
        idx = order[splits[c - 1] : splits[c]]
        s = arc_all[idx]
        s0, s1 = int(np.percentile(s, 2)), int(np.percentile(s, 98))
        seg = float(seg_px[(s0 + s1) // 2])
        cuts = _neck_cuts(cl.widths, s0, s1, seg, split_factor) if s1 - s0 > split_factor * seg else []
        edges = [int(s.min()) - 1, *cuts, int(s.max())]
        for a, b in zip(edges[:-1], edges[1:]):
            part = idx[(s > a) & (s <= b)]
            if part.size:
                pieces.append((part, bool(in_chain[c])))
    pieces = [p for p in pieces if p[0].size >= min_piece_fraction * med_chain]
    if not pieces:
        raise MeasurementError("the spine mask has no parts along its centreline")
    centres = np.array([[xs_all[p[0]].mean(), ys_all[p[0]].mean()] for p in pieces])
    by_row = np.argsort(centres[:, 1], kind="stable")
    pieces = [pieces[i] for i in by_row]
    centres = centres[by_row]
    out: list[VertebraTilt] = []
    for i, (part, chained) in enumerate(pieces):
        ys = ys_all[part].astype(np.float64)
        xs = xs_all[part].astype(np.float64)
        s = arc_all[part]
        lo, hi = int(np.percentile(s, 2)), int(np.percentile(s, 98))
        centre = int(np.clip(round(float(np.median(s))), 0, n - 1))
        seg = float(seg_px[centre])
        # First guess and sanity reference: perpendicular to the line through the neighbouring
        # pieces' centres (robust where the centreline fails, e.g. at a badly drawn end), else
        # the centreline's perpendicular; brought into [-60, 60] degrees.
        ref = _wrap_near(float(cl.tilt_deg[centre]), 0.0)
        if len(pieces) >= 2:
            d = centres[min(i + 1, len(pieces) - 1)] - centres[max(i - 1, 0)]
            ref = float(-np.degrees(np.arctan2(d[0], d[1])))
        start = float(np.clip(ref, -60.0, 60.0))
        fit = shape_tilt(ys, xs, start, core)
        if fit is None:
            continue  # too small to fit: a fragment
        tilt, height = fit
        merged = height > merged_factor * seg
        if not merged:
            if abs(tilt - start) <= max_deviation_deg:
                r = np.radians(tilt)
                along = float(np.ptp(xs * np.cos(r) + ys * np.sin(r)))
                out.append(VertebraTilt(float(xs.mean()), float(ys.mean()), float(tilt),
                                        float(cl.level_pos[centre]), "shape", height, along))
            continue  # otherwise not shaped like a vertebral body in line with its neighbours
        if not chained:
            continue
        # Fallback: the centreline's tilt, once per typical segment along the piece; samples
        # where the centreline strays from the line of the pieces' centres are left out.
        extent = float(hi - lo)
        count = max(1, int(round(extent / max(seg, 1.0))))
        for j in np.linspace(lo, hi, count + 2)[1:-1] if count > 1 else [0.5 * (lo + hi)]:
            j = int(round(j))
            t = _wrap_near(float(cl.tilt_deg[j]), 0.0)
            if abs(t - start) <= max_deviation_deg:
                out.append(VertebraTilt(float(cl.xs[j]), float(cl.ys[j]), t,
                                        float(cl.level_pos[j]), "centreline", 0.0))
    out.sort(key=lambda v: v.level_pos)
    if len(out) < 2:
        raise MeasurementError(
            "fewer than two vertebrae could be measured in the mask: too few separate parts")
    return cl, out


def cobb_from_vertebrae(vertebrae: Sequence[VertebraTilt], min_curve_deg: float = 5.0) -> CobbResult:
    """Curves and Cobb angles from per-vertebra tilts (``source="mask_vertebrae"``).

    The same curve finding as the landmark reference, on one sample per vertebra; levels are
    approximate (level positions from the centreline's arc length).
    """
    if len(vertebrae) < 2:
        raise MeasurementError("need at least two vertebrae to measure a Cobb angle")
    ys = np.array([v.y for v in vertebrae])
    xs = np.array([v.x for v in vertebrae])
    tilts = np.array([v.tilt_deg for v in vertebrae])
    pos = np.array([v.level_pos for v in vertebrae])
    curves = _curves_from_profile(ys, xs, tilts, pos, min_curve_deg)
    return _result(curves, tilts, pos, "mask_vertebrae")


def cobb_from_mask_vertebrae(
    mask: np.ndarray, min_curve_deg: float = 5.0, anatomy: bool = True, **kwargs
) -> tuple[Centreline, CobbResult]:
    """Centreline and Cobb angles of a spine mask by the end-plate method.

    ``kwargs`` go to :func:`vertebra_tilts`. The vertebrae then pass the anatomical sanity rule
    (:func:`r2mfnet.measure.anatomy.check_anatomy`: pieces of the sacrum below L5 and the like
    dropped, at most 17 vertebrae, doubtful results flagged in ``CobbResult.flags``) unless
    ``anatomy=False``. Raises :class:`MeasurementError` like
    :func:`~r2mfnet.measure.cobb.cobb_from_mask`.
    """
    from dataclasses import replace

    from r2mfnet.measure.anatomy import check_anatomy

    cl, vts = vertebra_tilts(mask, **kwargs)
    if not anatomy:
        return cl, cobb_from_vertebrae(vts, min_curve_deg)
    check = check_anatomy(vts)
    return cl, replace(cobb_from_vertebrae(list(check.kept), min_curve_deg), flags=check.flags)
