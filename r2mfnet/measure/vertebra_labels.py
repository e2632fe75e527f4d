"""Measurement from vertebra label maps (0 background, 1..17 = T1..L5): levels by name.

A binary mask tells where the spine is but not which vertebra is which, so its levels are
approximate (:mod:`r2mfnet.measure.levels`). A label map from an 18-class model (or painted from
landmarks, :mod:`r2mfnet.data.labels`) names every vertebra, so end vertebrae and apex are
reported by name and the Cobb angle is measured on the end plates, as a clinician draws it.

1. **Clean** (:func:`clean_labels`), rules applied in this order, nothing is invented:

   a. *one connected component per label*: for each label only its largest 8-connected piece is
      kept; the other pieces become background (they are not re-labelled);
   b. *big enough*: a label whose piece is smaller than ``min_area_fraction`` (0.2) x the median
      vertebra area is dropped (a speck is not a vertebra);
   c. *top-to-bottom order*: the centres' rows must increase with the label (T1 above T2 ...).
      The largest set of labels that is in order is kept (longest increasing subsequence; ties:
      the larger total area), the others are dropped;
   d. a level with no label left is reported **missing**; gaps are not filled and no vertebra
      is moved to another level. ``CleanReport`` lists every removal and its reason.

2. **End plates** (:func:`fit_vertebra`): the convex quadrilateral that best covers the vertebra
   names its corners (TL, TR, BL, BR, with the spine direction from the neighbouring vertebrae),
   so end plates and sides stay apart even for sheared or wedged vertebrae; each end plate is
   then refined to sub-pixel (the outline of the Gaussian-smoothed vertebra over the central
   ``core`` (60 %) of the plate, fitted with a straight line). This gives the upper and lower
   end-plate tilts, four corners and the mid-line tilt (left-edge midpoint to right-edge
   midpoint, as for landmarks). Tilts: degrees in image coordinates, positive = right end lower
   (as :func:`~r2mfnet.measure.landmarks.vertebra_tilts_deg`). A piece whose mid-line is more
   than 30 deg off the perpendicular to the line through its neighbours is not a vertebral body
   and is dropped (reported).

3. **Curves** (:func:`measure_labels`): the landmark reference's curve finding
   (:mod:`r2mfnet.measure.cobb`) on one sample per named vertebra (mid-line tilt, level position
   = index + 0.5): end vertebrae = alternating tilt extrema (hysteresis ``min_curve_deg``), apex =
   the vertebra farthest from the chord between the end vertebrae' centres. Per curve:
   ``angle_deg`` = angle between the **upper end plate of the upper end vertebra** and the
   **lower end plate of the lower end vertebra** (clinical Cobb), ``midline_angle_deg`` = the
   mid-line difference (the AASCE / SpineWeb16 ``angles.csv`` convention), and the level names.
   ``tilt_range_deg`` is the ``angles.csv`` column-1 definition (largest mid-line difference
   between any two vertebrae).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from r2mfnet.data.views import LEVELS
from r2mfnet.errors import MeasurementError
from r2mfnet.geometry import order_corners
from r2mfnet.measure.cobb import CobbResult, _curves_from_profile, _result

__all__ = [
    "CleanReport",
    "LabelledVertebra",
    "VertebraLevelMeasurement",
    "clean_labels",
    "draw_labels",
    "fit_vertebra",
    "measure_labels",
    "vertebrae_from_labels",
]

_EIGHT = np.ones((3, 3), dtype=bool)


# ----------------------------------------------------------------------------- cleaning
@dataclass
class CleanReport:
    """What :func:`clean_labels` kept and removed (level names; pixel counts)."""

    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra_pieces: dict[str, int] = field(default_factory=dict)  # level -> pixels removed (rule a)
    dropped: dict[str, str] = field(default_factory=dict)  # level -> reason (rules b, c)

    def to_dict(self) -> dict:
        return {"present": list(self.present), "missing": list(self.missing),
                "extra_pieces_px": dict(self.extra_pieces), "dropped": dict(self.dropped)}


def _check_labels(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise MeasurementError(f"a label map must be 2-D, got shape {lab.shape}")
    if lab.dtype.kind not in "iub":
        raise MeasurementError(f"a label map must hold integers, got {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > len(LEVELS)):
        raise MeasurementError(f"labels must be 0..{len(LEVELS)} (background, T1..L5), got {lab.min()}..{lab.max()}")
    return lab.astype(np.uint8, copy=False)


def _in_order(ys: Sequence[float], areas: Sequence[float]) -> list[int]:
    """Indices of the longest strictly increasing subsequence of ``ys`` (ties: larger area)."""
    n = len(ys)
    if n == 0:
        return []
    best = [(1, float(areas[i])) for i in range(n)]  # (count, total area) of the best chain ending at i
    prev = [-1] * n
    for i in range(n):
        for j in range(i):
            if ys[j] < ys[i]:
                cand = (best[j][0] + 1, best[j][1] + float(areas[i]))
                if cand > best[i]:
                    best[i], prev[i] = cand, j
    i = max(range(n), key=lambda k: best[k])
    out = []
    while i >= 0:
        out.append(i)
        i = prev[i]
    return out[::-1]


def clean_labels(labels: np.ndarray, min_area_fraction: float = 0.2) -> tuple[np.ndarray, CleanReport]:
    """Apply the anatomical rules (module docstring, step 1); returns ``(clean uint8 map, report)``."""
    lab = _check_labels(labels)
    out = np.zeros_like(lab)
    report = CleanReport()
    kept: list[tuple[int, float, int]] = []  # (label, centre row, area)
    objects = ndimage.find_objects(lab, max_label=len(LEVELS))
    for k, box in enumerate(objects, start=1):
        if box is None:
            continue
        sub = lab[box] == k
        comp, n = ndimage.label(sub, structure=_EIGHT)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            keep = int(np.argmax(sizes)) + 1
            report.extra_pieces[LEVELS[k - 1]] = int(sizes.sum() - sizes[keep - 1])
            sub = comp == keep
        out[box][sub] = k
        rows = np.nonzero(sub)[0] + box[0].start
        kept.append((k, float(rows.mean()), int(sub.sum())))
    if kept:
        median = float(np.median([a for _, _, a in kept]))
        small = [(k, y, a) for k, y, a in kept if a < min_area_fraction * median]
        for k, _, a in small:
            report.dropped[LEVELS[k - 1]] = f"too small ({a} px < {min_area_fraction:g} x median {median:.0f} px)"
            out[out == k] = 0
        kept = [t for t in kept if t not in small]
        order = _in_order([y for _, y, _ in kept], [a for _, _, a in kept])
        for i, (k, _, _) in enumerate(kept):
            if i not in order:
                report.dropped[LEVELS[k - 1]] = "out of top-to-bottom order"
                out[out == k] = 0
        kept = [kept[i] for i in order]
    present = {k for k, _, _ in kept}
    report.present = [LEVELS[k - 1] for k in sorted(present)]
    report.missing = [name for i, name in enumerate(LEVELS, start=1) if i not in present]
    return out, report


# ----------------------------------------------------------------------------- end plates
def _principal_near(ys: np.ndarray, xs: np.ndarray, start_deg: float) -> float:
    """Tilt of the pixels' principal axis nearest ``start_deg`` (or ``start_deg`` if round)."""
    x, y = xs - xs.mean(), ys - ys.mean()
    mu20, mu02, mu11 = float((x * x).mean()), float((y * y).mean()), float((x * y).mean())
    spread = np.hypot(mu20 - mu02, 2 * mu11)
    l1, l2 = 0.5 * (mu20 + mu02 + spread), 0.5 * (mu20 + mu02 - spread)
    if l2 <= 1e-12 or l1 / l2 < 1.15**2:  # axis ratio under 1.15: no defined axis
        return float(start_deg)
    major = 0.5 * float(np.degrees(np.arctan2(2.0 * mu11, mu20 - mu02)))
    cands = (major, major + 90.0, major - 90.0, major + 180.0, major - 180.0)
    return min(cands, key=lambda a: abs(a - start_deg))


def _outline_fit(g: np.ndarray, origin: tuple[float, float], cx: float, cy: float, a: float,
                 u_lo: float, u_hi: float, v_ext: float, core: float):
    """Sub-pixel straight-line fits ``((s_top, c_top), (s_bot, c_bot))`` of the upper and lower
    outlines over the central ``core`` of the width, in the frame turned by ``a`` degrees.

    ``g`` is the vertebra's indicator smoothed with a Gaussian (its 0.5 level is the outline
    without the pixel staircase), ``origin`` the (row, col) of ``g[0, 0]`` in the image. Along
    each line across the end plates (``u`` fixed, half-pixel steps) the outline is the first and
    last 0.5 crossing, linearly interpolated.
    """
    margin = 0.5 * (1.0 - core) * (u_hi - u_lo)
    us = np.arange(u_lo + margin, u_hi - margin + 1e-9, 0.5)
    if us.size < 5:
        return None
    step = 0.25
    vs = np.arange(-v_ext, v_ext + 1e-9, step)
    r = np.radians(a)
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    x = cx + uu * np.cos(r) - vv * np.sin(r) - origin[1]
    y = cy + uu * np.sin(r) + vv * np.cos(r) - origin[0]
    vals = ndimage.map_coordinates(g, [y.ravel(), x.ravel()], order=1, mode="constant", cval=0.0)
    vals = vals.reshape(uu.shape) - 0.5
    inside = vals >= 0
    ok = inside.any(axis=1) & ~inside[:, 0] & ~inside[:, -1]
    if ok.sum() < 5:
        return None
    first = np.argmax(inside, axis=1)
    last = vs.size - 1 - np.argmax(inside[:, ::-1], axis=1)
    rows = np.nonzero(ok)[0]
    f, l_ = first[rows], last[rows]
    a0, a1 = vals[rows, f - 1], vals[rows, f]  # a0 < 0 <= a1
    top = vs[f - 1] + step * (-a0) / np.maximum(a1 - a0, 1e-12)
    b0, b1 = vals[rows, l_], vals[rows, l_ + 1]  # b0 >= 0 > b1
    bot = vs[l_] + step * b0 / np.maximum(b0 - b1, 1e-12)
    s_top, c_top = np.polyfit(us[rows], top, 1)
    s_bot, c_bot = np.polyfit(us[rows], bot, 1)
    return (float(s_top), float(c_top)), (float(s_bot), float(c_bot))


def _frame_fit(
    ys: np.ndarray, xs: np.ndarray, start_deg: float = 0.0, core: float = 0.6, passes: int = 6,
    sigma: float = 1.0,
) -> tuple[float, float, float, np.ndarray] | None:
    """Fallback end-plate fit in one frame turned to the whole vertebra (no corner finding):
    ``(midline_deg, upper_deg, lower_deg, corners)``.

    ``corners`` is ``(4, 2)`` TL, TR, BL, BR (x, y): the fitted end-plate lines at the
    vertebra's left and right extent. ``start_deg`` is a first guess of the mid-line tilt (e.g.
    perpendicular to the line through the neighbouring vertebrae), used when the piece has no
    clear long axis. ``sigma`` (pixels) smooths the pixel staircase before the outline is found.
    ``None`` when the piece is too small to fit.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.size < 6:
        return None
    pad = int(np.ceil(3 * sigma)) + 2
    y0, x0 = int(ys.min()) - pad, int(xs.min()) - pad
    ind = np.zeros((int(ys.max()) - y0 + pad + 1, int(xs.max()) - x0 + pad + 1), np.float32)
    ind[ys.astype(int) - y0, xs.astype(int) - x0] = 1.0
    g = ndimage.gaussian_filter(ind, sigma) if sigma > 0 else ind
    cx, cy = float(xs.mean()), float(ys.mean())
    a = _principal_near(ys, xs, start_deg)
    fit = None
    for _ in range(passes):
        r = np.radians(a)
        u = (xs - cx) * np.cos(r) + (ys - cy) * np.sin(r)
        v = -(xs - cx) * np.sin(r) + (ys - cy) * np.cos(r)
        v_ext = float(np.abs(v).max()) + pad
        fit = _outline_fit(g, (y0, x0), cx, cy, a, float(u.min()) - 0.5, float(u.max()) + 0.5, v_ext, core)
        if fit is None:
            return None
        step = float(np.degrees(0.5 * (np.arctan(fit[0][0]) + np.arctan(fit[1][0]))))
        a += step
        if abs(step) < 0.01:
            break
    r = np.radians(a)
    u = (xs - cx) * np.cos(r) + (ys - cy) * np.sin(r)
    v = -(xs - cx) * np.sin(r) + (ys - cy) * np.cos(r)
    u_lo, u_hi = float(u.min()) - 0.5, float(u.max()) + 0.5
    fit = _outline_fit(g, (y0, x0), cx, cy, a, u_lo, u_hi, float(np.abs(v).max()) + pad, core)
    if fit is None:
        return None
    (s_top, c_top), (s_bot, c_bot) = fit
    upper = a + float(np.degrees(np.arctan(s_top)))
    lower = a + float(np.degrees(np.arctan(s_bot)))
    pts_uv = np.array([
        [u_lo, c_top + s_top * u_lo], [u_hi, c_top + s_top * u_hi],
        [u_lo, c_bot + s_bot * u_lo], [u_hi, c_bot + s_bot * u_hi],
    ])
    corners = np.stack([
        cx + pts_uv[:, 0] * np.cos(r) - pts_uv[:, 1] * np.sin(r),
        cy + pts_uv[:, 0] * np.sin(r) + pts_uv[:, 1] * np.cos(r),
    ], axis=1)
    return 0.5 * (upper + lower), upper, lower, corners


def _smoothed_indicator(ys: np.ndarray, xs: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(binary box, Gaussian-smoothed box, (row, col) of the box's origin) of one vertebra."""
    pad = int(np.ceil(3 * sigma)) + 3
    y0, x0 = int(ys.min()) - pad, int(xs.min()) - pad
    ind = np.zeros((int(ys.max()) - y0 + pad + 1, int(xs.max()) - x0 + pad + 1), np.float32)
    ind[ys.astype(int) - y0, xs.astype(int) - x0] = 1.0
    g = ndimage.gaussian_filter(ind, sigma) if sigma > 0 else ind
    return ind, g, (y0, x0)


def _quadrilateral(ind: np.ndarray, origin: tuple[int, int]) -> np.ndarray | None:
    """Four corners (x, y, image coordinates, any order) of the convex quadrilateral that best
    covers the piece (``cv2.approxPolyN``: least added area); None if unavailable or degenerate."""
    import cv2

    if not hasattr(cv2, "approxPolyN"):  # OpenCV < 4.11
        return None
    contours, _ = cv2.findContours(ind.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    if len(c) < 8:
        return None
    try:
        q = cv2.approxPolyN(c, 4, ensure_convex=True).reshape(-1, 2).astype(np.float64)
    except cv2.error:
        return None
    if q.shape != (4, 2) or cv2.contourArea(q.astype(np.float32)) < 0.5 * float(ind.sum()):
        return None
    return q + np.array([origin[1], origin[0]], dtype=np.float64)


def _refine_plate(g: np.ndarray, origin: tuple[int, int], p: np.ndarray, q: np.ndarray, depth: float,
                  core: float, sigma: float, passes: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
    """Sub-pixel line ``(point, unit direction p->q)`` of the outline near the edge ``p -> q``.

    The outside of the piece is to the left of ``p -> q`` (``p, q`` = TL, TR for the upper end
    plate, BR, BL for the lower one). Along lines across the edge over its central ``core``, the
    first 0.5 crossing of ``g`` coming from outside is the outline; a straight-line fit moves and
    turns the edge, ``passes`` times.
    """
    m = 0.5 * (p + q)
    d = q - p
    length = float(np.hypot(*d))
    if length < 4:
        return None
    d = d / length
    v_out = 2.0 * sigma + 3.0
    v_in = max(2.0, min(0.45 * depth, 3.0 * v_out + 0.2 * depth))
    step = 0.25
    ss = np.arange(-v_out, v_in + 1e-9, step)
    for _ in range(passes):
        n = np.array([d[1], -d[0]])  # outward normal (left of p -> q in image coordinates)
        us = np.arange(-0.5 * core * length, 0.5 * core * length + 1e-9, 0.5)
        if us.size < 5:
            return None
        uu, sv = np.meshgrid(us, ss, indexing="ij")
        x = m[0] + uu * d[0] - sv * n[0] - origin[1]
        y = m[1] + uu * d[1] - sv * n[1] - origin[0]
        vals = ndimage.map_coordinates(g, [y.ravel(), x.ravel()], order=1, mode="constant", cval=0.0)
        vals = vals.reshape(uu.shape) - 0.5
        inside = vals >= 0
        ok = inside.any(axis=1) & ~inside[:, 0]
        if ok.sum() < 5:
            return None
        rows = np.nonzero(ok)[0]
        f = np.argmax(inside, axis=1)[rows]
        a0, a1 = vals[rows, f - 1], vals[rows, f]
        s_cross = ss[f - 1] + step * (-a0) / np.maximum(a1 - a0, 1e-12)
        slope, icpt = np.polyfit(us[rows], -s_cross, 1)  # outward offset e(u) = slope * u + icpt
        m = m + icpt * n
        d = d + slope * n
        d = d / float(np.hypot(*d))
    return m, d


def _intersect(p: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of the line ``p + t d`` with the line through ``a`` and ``b``."""
    e = b - a
    den = d[0] * e[1] - d[1] * e[0]
    if abs(den) < 1e-9:
        return a
    t = ((a[0] - p[0]) * e[1] - (a[1] - p[1]) * e[0]) / den
    return p + t * d


def fit_vertebra(
    ys: np.ndarray, xs: np.ndarray, start_deg: float = 0.0, core: float = 0.6, sigma: float = 1.0,
) -> tuple[float, float, float, np.ndarray] | None:
    """End plates of one vertebra's pixels: ``(midline_deg, upper_deg, lower_deg, corners)``.

    1. The convex quadrilateral that best covers the piece (least added area) gives four
       corners; they are named TL, TR, BL, BR with the spine direction ``start_deg`` + 90 deg
       (:func:`r2mfnet.geometry.order_corners`: the pair of opposite edges more
       perpendicular to the spine are the end plates). A sheared or wedged vertebra thus keeps
       its end plates apart from its sides.
    2. Each end plate is refined to sub-pixel: the vertebra's indicator is smoothed (Gaussian
       ``sigma``), and across the central ``core`` of the plate the outline (0.5 crossing) is
       fitted with a straight line (:func:`_refine_plate`).
    3. Corners = the refined plates cut by the quadrilateral's sides; ``midline_deg`` = the
       landmark mid-line of these corners (left-edge midpoint to right-edge midpoint,
       :func:`~r2mfnet.geometry.vertebra_tilts_deg`), ``upper_deg``/``lower_deg`` the
       plates' tilts.

    ``start_deg`` is the expected mid-line tilt (perpendicular to the line through the
    neighbouring vertebrae). Falls back to a single-frame fit (:func:`_frame_fit`) when no
    quadrilateral is found. ``None`` when the piece is too small.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.size < 6:
        return None
    ind, g, origin = _smoothed_indicator(ys, xs, sigma)
    quad = _quadrilateral(ind, origin)
    if quad is None:
        return _frame_fit(ys, xs, start_deg, core, sigma=sigma)
    r = np.radians(start_deg)
    tl, tr, bl, br = order_corners(quad, np.array([-np.sin(r), np.cos(r)]))
    depth = float(np.hypot(*(0.5 * (bl + br) - 0.5 * (tl + tr))))
    top = _refine_plate(g, origin, tl, tr, depth, core, sigma)
    bottom = _refine_plate(g, origin, br, bl, depth, core, sigma)
    if top is None or bottom is None:
        return _frame_fit(ys, xs, start_deg, core, sigma=sigma)
    (pt, dt), (pb, db) = top, bottom
    corners = np.array([_intersect(pt, dt, tl, bl), _intersect(pt, dt, tr, br),
                        _intersect(pb, db, tl, bl), _intersect(pb, db, tr, br)])
    upper = float(np.degrees(np.arctan2(dt[1], dt[0])))
    lower = float(np.degrees(np.arctan2(-db[1], -db[0])))  # db points right to left
    mid_vec = 0.5 * (corners[1] + corners[3]) - 0.5 * (corners[0] + corners[2])  # as vertebra_tilts_deg
    mid = float(np.degrees(np.arctan2(mid_vec[1], mid_vec[0])))
    return mid, upper, lower, corners


@dataclass(frozen=True)
class LabelledVertebra:
    """One named vertebra: centre, area, mid-line and end-plate tilts, fitted corners."""

    level: str
    label: int
    x: float
    y: float
    area: int
    tilt_deg: float
    upper_tilt_deg: float
    lower_tilt_deg: float
    corners: np.ndarray = field(repr=False)  # (4, 2) TL, TR, BL, BR

    def to_dict(self) -> dict:
        return {"level": self.level, "x": round(self.x, 2), "y": round(self.y, 2), "area_px": self.area,
                "tilt_deg": round(self.tilt_deg, 2), "upper_end_plate_deg": round(self.upper_tilt_deg, 2),
                "lower_end_plate_deg": round(self.lower_tilt_deg, 2)}


def vertebrae_from_labels(
    labels: np.ndarray, clean: bool = True, core: float = 0.6, min_area_fraction: float = 0.2,
    max_deviation_deg: float = 30.0,
) -> tuple[list[LabelledVertebra], CleanReport]:
    """Every (cleaned) vertebra of a label map with its end plates, top to bottom.

    A piece whose fitted mid-line is more than ``max_deviation_deg`` off the perpendicular to the
    line through its neighbours' centres is not a vertebral body (e.g. two overlapping labelled
    vertebrae split down a diagonal): it is dropped and reported, not measured."""
    lab = _check_labels(labels)
    if clean:
        lab, report = clean_labels(lab, min_area_fraction)
    else:
        report = CleanReport()
        present = sorted(int(k) for k in np.unique(lab) if k > 0)
        report.present = [LEVELS[k - 1] for k in present]
        report.missing = [n for i, n in enumerate(LEVELS, start=1) if i not in present]
    pix: list[tuple[int, np.ndarray, np.ndarray]] = []
    objects = ndimage.find_objects(lab, max_label=len(LEVELS))
    for k, box in enumerate(objects, start=1):
        if box is None:
            continue
        yy, xx = np.nonzero(lab[box] == k)
        pix.append((k, yy + box[0].start, xx + box[1].start))
    centres = np.array([[xx.mean(), yy.mean()] for _, yy, xx in pix]) if pix else np.zeros((0, 2))
    out: list[LabelledVertebra] = []
    for i, (k, yy, xx) in enumerate(pix):
        start = 0.0
        if len(pix) >= 2:  # perpendicular to the line through the neighbouring vertebrae
            d = centres[min(i + 1, len(pix) - 1)] - centres[max(i - 1, 0)]
            start = float(np.clip(-np.degrees(np.arctan2(d[0], d[1])), -60.0, 60.0))
        fit = fit_vertebra(yy, xx, start, core)
        if fit is None:
            report.dropped[LEVELS[k - 1]] = "too small to fit end plates"
            continue
        mid, up, low, corners = fit
        if len(pix) >= 3 and abs((mid - start + 90.0) % 180.0 - 90.0) > max_deviation_deg:
            report.dropped[LEVELS[k - 1]] = (
                f"not a vertebral body: mid-line {mid:.0f} deg, {max_deviation_deg:g}+ deg off "
                f"the perpendicular to its neighbours ({start:.0f} deg)")
            continue
        out.append(LabelledVertebra(LEVELS[k - 1], k, float(xx.mean()), float(yy.mean()), int(yy.size),
                                    float(mid), float(up), float(low), corners))
    report.present = [v.level for v in out]
    report.missing = [n for n in LEVELS if n not in report.present]
    return out, report


# ----------------------------------------------------------------------------- measurement
@dataclass
class VertebraLevelMeasurement:
    """Curves of a labelled spine with level names and end-plate Cobb angles."""

    vertebrae: list[LabelledVertebra]
    report: CleanReport
    cobb: CobbResult  # mid-line tilt profile and curve finding (source "labels")
    curves: list[dict]

    @property
    def main_curve(self) -> dict | None:
        return max(self.curves, key=lambda c: c["angle_deg"]) if self.curves else None

    @property
    def main_angle(self) -> float:
        """Largest end-plate Cobb angle of any curve (0.0 without curves)."""
        return float(self.main_curve["angle_deg"]) if self.curves else 0.0

    @property
    def tilt_range(self) -> float:
        """``angles.csv`` column-1 definition: largest mid-line angle between two vertebrae."""
        return self.cobb.tilt_range

    def to_dict(self) -> dict:
        return {
            "source": "vertebra_labels",
            "main_angle_deg": round(self.main_angle, 2),
            "main_midline_angle_deg": round(self.cobb.main_angle, 2),
            "tilt_range_deg": round(self.tilt_range, 2),
            "curves": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in c.items()} for c in self.curves],
            "vertebrae": [v.to_dict() for v in self.vertebrae],
            "labels": self.report.to_dict(),
            "levels_note": "levels named by the vertebra labels",
        }


def measure_labels(
    labels: np.ndarray, min_curve_deg: float = 5.0, clean: bool = True, core: float = 0.6,
    min_area_fraction: float = 0.2,
) -> VertebraLevelMeasurement:
    """Clean, fit end plates, find curves (module docstring). ``MeasurementError`` with fewer
    than two measurable vertebrae."""
    vertebrae, report = vertebrae_from_labels(labels, clean, core, min_area_fraction)
    if len(vertebrae) < 2:
        raise MeasurementError(
            f"fewer than two vertebrae could be measured (present: {', '.join(report.present) or 'none'})"
        )
    ys = np.array([v.y for v in vertebrae])
    xs = np.array([v.x for v in vertebrae])
    tilts = np.array([v.tilt_deg for v in vertebrae])
    pos = np.array([LEVELS.index(v.level) + 0.5 for v in vertebrae])
    names = [v.level for v in vertebrae]
    curves = _curves_from_profile(ys, xs, tilts, pos, min_curve_deg, names)
    cobb = _result(curves, tilts, pos, "labels")
    by_level = {v.level: v for v in vertebrae}
    out = []
    for c in curves:
        up, low = by_level[c.upper_level], by_level[c.lower_level]
        out.append({
            "upper": c.upper_level, "lower": c.lower_level, "apex": c.apex_level,
            "angle_deg": float(abs(up.upper_tilt_deg - low.lower_tilt_deg)),
            "midline_angle_deg": float(c.angle_deg),
            "upper_end_plate_deg": float(up.upper_tilt_deg), "lower_end_plate_deg": float(low.lower_tilt_deg),
            "side": c.side, "region": c.region,
        })
    return VertebraLevelMeasurement(vertebrae, report, cobb, out)


# ----------------------------------------------------------------------------- picture
def _palette(n: int = len(LEVELS)) -> np.ndarray:
    import cv2

    hsv = np.zeros((n, 1, 3), np.uint8)
    hsv[:, 0, 0] = (np.arange(n) * 180 // n * 7) % 180  # spread hues so neighbours differ
    hsv[:, 0, 1] = 200
    hsv[:, 0, 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[:, 0, :]


def draw_labels(image01: np.ndarray, labels: np.ndarray, measurement: VertebraLevelMeasurement | None = None,
                alpha: float = 0.35, title: str | None = None) -> np.ndarray:
    """RGB uint8 picture: vertebrae coloured and named, each curve's two end plates (the upper
    plate of its upper end vertebra, the lower plate of its lower one, extended) with
    ``"T5-T11 42.0 deg"`` beside its apex; a header with the main angle and missing levels.
    Same look as :func:`r2mfnet.measure.annotate.draw_measurement` (text on dark boxes)."""
    import cv2

    from r2mfnet.measure.annotate import CURVE_COLOURS, _scale, _text

    img = np.clip(np.asarray(image01, dtype=np.float32), 0.0, 1.0)
    lab = _check_labels(labels)
    if img.shape != lab.shape:
        raise MeasurementError(f"image {img.shape} and labels {lab.shape} differ in size")
    h, w = img.shape
    rgb = np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2)
    pal = _palette()
    fg = lab > 0
    colour = pal[np.clip(lab.astype(int) - 1, 0, len(LEVELS) - 1)]
    rgb[fg] = ((1 - alpha) * rgb[fg] + alpha * colour[fg]).astype(np.uint8)
    thick, fs = _scale(h, w)
    small = 0.8 * fs
    vs = measurement.vertebrae if measurement is not None else []
    for v in vs:
        c = tuple(int(x) for x in pal[v.label - 1])
        x_text = int(v.corners[:, 0].max() + 3 * thick)
        _text(rgb, v.level, (x_text, int(v.y + 4 * thick)), small, max(1, thick - 1), c)
    lines = []
    if measurement is not None:
        by_level = {v.level: v for v in vs}
        for i, cv in enumerate(measurement.curves):
            col = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            for level, which in ((cv["upper"], (0, 1)), (cv["lower"], (2, 3))):
                p, q = by_level[level].corners[list(which)]
                d = q - p
                a, b = p - 0.5 * d, q + 0.5 * d
                cv2.line(rgb, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), col, thick + 1, cv2.LINE_AA)
            apex = by_level[cv["apex"]]
            text = f"{cv['angle_deg']:.1f} deg {cv['upper']}-{cv['lower']}"
            tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)[0][0]
            name_w = cv2.getTextSize("T12", cv2.FONT_HERSHEY_SIMPLEX, small, max(1, thick - 1))[0][0]
            if cv["side"] == "right":  # beyond the level names
                x = int(apex.corners[:, 0].max() + 9 * thick + name_w)
            else:
                x = int(apex.corners[:, 0].min() - 6 * thick - tw)
            if x + tw > w - 2 or x < 2:  # no room on the convex side: the other side
                x = int(apex.corners[:, 0].min() - 6 * thick - tw) if cv["side"] == "right" else int(
                    apex.corners[:, 0].max() + 9 * thick + name_w)
            lines.append((text, (x, int(apex.y)), col))
    for text, org, col in lines:  # after the level names, so a curve's label stays readable
        _text(rgb, text, org, fs, thick, col)
    header = title or ""
    if measurement is not None:
        header = (header + ": " if header else "") + f"main {measurement.main_angle:.1f} deg (end plates)"
        if measurement.report.missing:
            header += f" | missing {','.join(measurement.report.missing)}"
    if header:  # shrunk to fit: a single narrow view must not cut its own title
        width = cv2.getTextSize(header, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)[0][0]
        hfs = fs * min(1.0, (w - 8) / max(width, 1))
        _text(rgb, header, (4, int(30 * hfs) + 4), hfs, max(1, int(round(thick * hfs / fs))))
    return rgb
