"""Pose one patient's spine in a view (coronal, left-bending, right-bending) and place it in pixels.

The spine is described by its tangent angle ``phi(s)`` along the arc length ``s`` (mm), pinned at
*knots* placed at vertebra centres: the end vertebrae of every curve, plus T1 and L5. Between
knots the angle follows a cosine ease, so a curve's extreme tilts sit exactly at its end
vertebrae and its measured Cobb angle equals the requested one (up to the small per-vertebra
jitter). A bending view rescales each curve's knot difference (by ``1 - flexibility`` when the
patient bends toward its convexity, by ``1 + stiffening`` otherwise) and adds the trunk bend in
the free segments above and below the curves and at the lumbosacral junction. Vertebrae are
rigid: only their positions and tilts change between views.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from r2mfnet.data.synthetic.patient import N_LEVELS, Patient
from r2mfnet.geometry import vertebra_tilts_deg

# Sign of the curvature a bending view adds: left bending (patient bends to their left = image
# right) makes the tangent angle grow going down, like a curve convex to the patient's left.
BEND_SIGN: dict[str, int] = {"coronal": 0, "left_bending": 1, "right_bending": -1}

CERVICAL_MM = 110.0  # cervical spine drawn above T1, returning to vertical
FREE_TOP_DEG_PER_LEVEL = 6.0
FREE_BOTTOM_DEG_PER_LEVEL = 7.0


@dataclass(frozen=True)
class Knots:
    """Knot vertebra indices, tangent angles (deg) there, and each segment's shape exponent."""

    index: np.ndarray  # (K,) int, increasing
    angle: np.ndarray  # (K,) float
    skew: np.ndarray  # (K-1,) float


@dataclass(frozen=True)
class ViewGeometry:
    """Everything the renderer and the ground truth need about one view, in pixels."""

    view: str
    corners: np.ndarray  # (17, 4, 2) TL, TR, BL, BR as (x, y)
    centres: np.ndarray  # (17, 2)
    tilt_deg: np.ndarray  # (17,) tangent angle used for each body (incl. jitter)
    width_px: np.ndarray  # (17,)
    height_px: np.ndarray  # (17,)
    rotation: np.ndarray  # (17,) posterior-element shift toward the concavity, share of half-width
    line: np.ndarray  # (M, 2) centreline from the cervical spine down to the sacrum
    line_angle_deg: np.ndarray  # (M,) tangent angle along ``line``
    line_s_mm: np.ndarray  # (M,) arc length along ``line``, 0 at the top of T1
    pelvis_centre: np.ndarray  # (2,) top centre of the sacrum
    pelvis_tilt_deg: float
    px_per_mm: float
    image_hw: tuple[int, int]


def _segments(patient: Patient) -> tuple[list[int], list[int | None]]:
    """Knot indices and, per segment, the curve index it belongs to (None = free segment)."""
    idx: list[int] = [0] if patient.curves[0].upper > 0 else []
    owner: list[int | None] = []
    for ci, c in enumerate(patient.curves):
        if not idx:
            idx.append(c.upper)
        elif idx[-1] != c.upper:
            owner.append(None)
            idx.append(c.upper)
        idx.append(c.lower)
        owner.append(ci)
    if idx[-1] < N_LEVELS - 1:
        idx.append(N_LEVELS - 1)
        owner.append(None)
    return idx, owner


def coronal_knots(patient: Patient, balance: bool = True) -> Knots:
    """Knots of the standing view: each curve spans exactly its requested Cobb angle."""
    idx, owner = _segments(patient)
    vals = np.zeros(len(idx))
    # Curve knots first, as cumulative signed Cobb differences.
    start = idx.index(patient.curves[0].upper)
    for j in range(start, len(idx) - 1):
        if owner[j] is not None:
            c = patient.curves[owner[j]]
            vals[j + 1] = vals[j] + c.sign * c.cobb_deg
        else:
            vals[j + 1] = vals[j]
    curve_ix = [i for i, k in enumerate(idx) if any(k in (c.upper, c.lower) for c in patient.curves)]
    cv = vals[curve_ix]
    vals += -(cv.max() + cv.min()) / 2.0 + patient.coronal_offset_deg
    vmin, vmax = vals[curve_ix].min(), vals[curve_ix].max()
    # Bottom free segment: L5 as close to the patient's preferred tilt as the Cobb allows.
    last = patient.curves[-1].lower
    if last < N_LEVELS - 1:
        n = N_LEVELS - 1 - last
        lo = max(vmin, vals[-2] - FREE_BOTTOM_DEG_PER_LEVEL * n)
        hi = min(vmax, vals[-2] + FREE_BOTTOM_DEG_PER_LEVEL * n)
        vals[-1] = float(np.clip(patient.pelvic_target_deg, lo, hi))
    skew = np.array([1.0 if o is None else patient.curves[o].skew for o in owner])
    first = patient.curves[0].upper
    if first > 0:
        n = first
        lo = max(vmin, vals[1] - FREE_TOP_DEG_PER_LEVEL * n)
        hi = min(vmax, vals[1] + FREE_TOP_DEG_PER_LEVEL * n)
        vals[0] = (lo + hi) / 2.0
        if balance and hi > lo:
            # Choose T1's tilt so that T1 sits roughly above L5, as a compensated patient does.
            best = None
            for cand in np.linspace(lo, hi, 9):
                vals[0] = cand
                pts = _centres_mm(patient, Knots(np.array(idx), vals.copy(), skew))
                off = abs(pts[0, 0] - pts[-1, 0]) + 1.5 * abs(cand)  # and T1 near level
                if best is None or off < best[0]:
                    best = (off, cand)
            vals[0] = best[1]
    return Knots(np.array(idx), vals, skew)


MAX_BENDING_SHIFT_MM = 110.0  # T1 over L5 displacement beyond which the bend is toned down
FREE_SEGMENT_FLEX = 0.6  # compensatory (free) segments relax by this share when bending


def _bending_knots(patient: Patient, view: str, total: float, base: Knots) -> Knots:
    sign = BEND_SIGN[view]
    idx, owner = _segments(patient)
    diffs = np.diff(base.angle)
    lumbosacral = min(patient.lumbosacral_share * total, 8.0)
    remaining = total - lumbosacral
    # Bottom free segment first (the lumbar spine bends most), then the top one.
    last = len(owner) - 1
    for j in dict.fromkeys(j for j in (last, 0) if owner[j] is None):
        n = int(idx[j + 1] - idx[j])
        rate = FREE_BOTTOM_DEG_PER_LEVEL if j == last else FREE_TOP_DEG_PER_LEVEL
        share = min(remaining, rate * n * 0.7)
        diffs[j] = diffs[j] * (1 - FREE_SEGMENT_FLEX) + sign * share
        remaining -= share
    lumbosacral = min(lumbosacral + 0.5 * remaining, 12.0)
    for j, o in enumerate(owner):
        if o is not None:
            c = patient.curves[o]
            straightens = c.sign != sign
            diffs[j] *= (1.0 - c.flexibility) if straightens else (1.0 + c.stiffening)
    vals = np.empty_like(base.angle)
    vals[-1] = base.angle[-1] * 0.5 - sign * lumbosacral
    for j in range(len(diffs) - 1, -1, -1):
        vals[j] = vals[j + 1] - diffs[j]
    return Knots(base.index, vals, base.skew)


def view_knots(patient: Patient, view: str, base: Knots | None = None) -> Knots:
    """Knots of ``view``: curves rescaled by flexibility, trunk bend added outside them.

    The bend is toned down if it would carry T1 more than :data:`MAX_BENDING_SHIFT_MM` sideways
    from L5: patients bend their trunk, they do not fold it.
    """
    base = coronal_knots(patient) if base is None else base
    if BEND_SIGN[view] == 0:
        return base
    total = patient.bend_deg[view]
    for _ in range(6):
        knots = _bending_knots(patient, view, total, base)
        pts = _centres_mm(patient, knots)
        if abs(pts[0, 0] - pts[-1, 0]) <= MAX_BENDING_SHIFT_MM:
            break
        total *= 0.7
    return knots


def _level_positions_mm(patient: Patient) -> np.ndarray:
    """Arc-length position of each vertebra centre, T1 top at 0."""
    h, d = patient.body_height_mm, patient.disc_mm
    s = np.empty(N_LEVELS)
    s[0] = h[0] / 2
    for k in range(1, N_LEVELS):
        s[k] = s[k - 1] + h[k - 1] / 2 + d[k - 1] + h[k] / 2
    return s


def tangent_angle(s: np.ndarray, knot_s: np.ndarray, knots: Knots) -> np.ndarray:
    """Tangent angle (deg) at arc positions ``s``: cosine eases between knots, flat beyond."""
    s = np.asarray(s, dtype=np.float64)
    out = np.empty_like(s)
    ks, kv = knot_s, knots.angle
    out[s <= ks[0]] = kv[0]
    out[s >= ks[-1]] = kv[-1]
    for j in range(len(ks) - 1):
        m = (s >= ks[j]) & (s < ks[j + 1])
        t = ((s[m] - ks[j]) / (ks[j + 1] - ks[j])) ** knots.skew[j]
        out[m] = kv[j] + (kv[j + 1] - kv[j]) * (1 - np.cos(np.pi * t)) / 2
    # The cervical spine returns to vertical above T1 (the head stays over the trunk).
    above = s < ks[0]
    if np.any(above):
        level_s0 = ks[0]
        t = np.clip((level_s0 - s[above]) / CERVICAL_MM, 0, 1)
        out[above] = out[above] * (1 + np.cos(np.pi * t)) / 2
    return out


def _integrate(patient: Patient, knots: Knots, step: float = 1.0):
    """Centreline (mm, L5 centre at the origin) sampled every ``step`` mm of arc length."""
    s_lev = _level_positions_mm(patient)
    knot_s = s_lev[knots.index]
    s0 = -CERVICAL_MM
    s1 = s_lev[-1] + patient.body_height_mm[-1] / 2 + 8.0
    s = np.arange(s0, s1 + step, step)
    phi = tangent_angle(s, knot_s, knots)
    r = np.radians(phi)
    x = np.concatenate([[0.0], np.cumsum((np.sin(r[1:]) + np.sin(r[:-1])) / 2 * step)])
    y = np.concatenate([[0.0], np.cumsum((np.cos(r[1:]) + np.cos(r[:-1])) / 2 * step)])
    cx = np.interp(s_lev[-1], s, x)
    cy = np.interp(s_lev[-1], s, y)
    return s, phi, x - cx, y - cy, s_lev


def _centres_mm(patient: Patient, knots: Knots) -> np.ndarray:
    s, _, x, y, s_lev = _integrate(patient, knots, step=2.0)
    return np.stack([np.interp(s_lev, s, x), np.interp(s_lev, s, y)], axis=1)


def _wedges_deg(patient: Patient, knots: Knots) -> np.ndarray:
    """Anatomical wedging from the coronal curvature (``knots``): identical in every view."""
    s_lev = _level_positions_mm(patient)
    phi = tangent_angle(s_lev, s_lev[knots.index], knots)
    return patient.wedge_gain * np.gradient(phi)


def _rotation(patient: Patient, view: str) -> np.ndarray:
    """Axial rotation proxy: posterior elements shift toward the concavity near each apex."""
    out = np.zeros(N_LEVELS)
    k = np.arange(N_LEVELS)
    sign = BEND_SIGN[view]
    for c in patient.curves:
        t = (k - c.upper) / max(c.lower - c.upper, 1)
        bump = np.where((t >= 0) & (t <= 1), np.sin(np.pi * np.clip(t, 0, 1)), 0.0)
        scale = 1.0
        if sign != 0:
            scale = (1 - c.flexibility) if c.sign != sign else 1 + c.stiffening
        out += c.sign * 0.45 * min(c.cobb_deg / 70.0, 1.0) * scale * bump
    return np.clip(out, -0.5, 0.5)


def unit_vectors(deg: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Down (along the spine) and right (across the body) unit vectors for tangent angle(s)."""
    r = np.radians(deg)
    down = np.stack([np.sin(r), np.cos(r)], axis=-1)
    right = np.stack([np.cos(r), -np.sin(r)], axis=-1)
    return down, right


def body_corners(centres: np.ndarray, tilt_deg: np.ndarray, width: np.ndarray, height: np.ndarray,
                 wedge_deg: np.ndarray) -> np.ndarray:
    """Corners TL, TR, BL, BR of wedged bodies whose mid-line tilt is exactly ``tilt_deg``.

    The top and bottom endplates are turned by -/+ half the wedge angle about the body centre,
    which leaves the mid-line (joining the left and right edge midpoints) untouched, so the
    reference Cobb measured from these corners sees the intended tilts.
    """
    down, _ = unit_vectors(tilt_deg)
    _, right_top = unit_vectors(tilt_deg - wedge_deg / 2)
    _, right_bot = unit_vectors(tilt_deg + wedge_deg / 2)
    half_h = (height / 2)[:, None]
    half_w = (width / 2)[:, None]
    scale = 1.0 / np.cos(np.radians(wedge_deg / 2))[:, None]
    top = centres - down * half_h
    bot = centres + down * half_h
    tl = top - right_top * half_w * scale
    tr = top + right_top * half_w * scale
    bl = bot - right_bot * half_w * scale
    br = bot + right_bot * half_w * scale
    return np.stack([tl, tr, bl, br], axis=1)


def _place(patient: Patient, knots: Knots, ppm: float, anchor: np.ndarray, wedges: np.ndarray):
    s, phi, x, y, s_lev = _integrate(patient, knots)
    line = np.stack([x, y], axis=1) * ppm + anchor
    centres = np.stack([np.interp(s_lev, s, x), np.interp(s_lev, s, y)], axis=1) * ppm + anchor
    tilt = tangent_angle(s_lev, s_lev[knots.index], knots) + patient.tilt_jitter_deg
    width = patient.body_width_mm * ppm
    height = patient.body_height_mm * ppm
    corners = body_corners(centres, tilt, width, height, wedges)
    return line, phi, centres, tilt, width, height, corners, s


def view_geometry(patient: Patient, view: str, image_hw: tuple[int, int]) -> ViewGeometry:
    """Pixel geometry of ``view``: the pelvis stays put, the spine above it bends."""
    h_img, w_img = image_hw
    ppm = patient.look["spine_fraction"] * h_img / patient.spine_length_mm
    pelvis_x = w_img * (0.5 + patient.look["pelvis_shift"])
    margin = max(2.0, 0.06 * w_img)
    base = coronal_knots(patient)
    wedges = _wedges_deg(patient, base)
    # On narrow images a strongly bent spine may not fit: zoom out (same factor in every view,
    # since the three films of a patient share one pixel spacing).
    span = max(np.ptp(_place(patient, view_knots(patient, v, base), 1.0, np.zeros(2), wedges)[6][..., 0])
               for v in BEND_SIGN)
    ppm = min(ppm, (w_img - 1 - 2 * margin) / span)
    # Vertical anchor from the coronal view: its T1 top at top_fraction of the image height.
    cor = _place(patient, base, ppm, np.zeros(2), wedges)
    anchor_y = patient.look["top_fraction"] * h_img - cor[6][0, :2, 1].min()
    knots = view_knots(patient, view, base)
    line, phi, centres, tilt, width, height, corners, line_s = _place(
        patient, knots, ppm, np.array([pelvis_x, anchor_y]), wedges)
    # Keep the spine inside the image with a margin: patients do not stand perfectly centred.
    lo, hi = corners[..., 0].min(), corners[..., 0].max()
    shift = 0.0
    if lo < margin:
        shift = margin - lo
    elif hi > w_img - 1 - margin:
        shift = (w_img - 1 - margin) - hi
    if hi - lo > w_img - 1 - 2 * margin:
        shift = (w_img - 1) / 2 - (hi + lo) / 2
    offset = np.array([shift, 0.0])
    down, _ = unit_vectors(tilt[-1])
    pelvis_tilt = 0.5 * tilt[-1]
    pelvis_centre = centres[-1] + down * (height[-1] / 2 + patient.disc_mm[-1] * 0.9 * ppm)
    return ViewGeometry(
        view=view,
        corners=corners + offset,
        centres=centres + offset,
        tilt_deg=tilt,
        width_px=width,
        height_px=height,
        rotation=_rotation(patient, view),
        line=line + offset,
        line_angle_deg=phi,
        line_s_mm=line_s,
        pelvis_centre=pelvis_centre + offset,
        pelvis_tilt_deg=float(pelvis_tilt),
        px_per_mm=float(ppm),
        image_hw=(int(h_img), int(w_img)),
    )


def curve_cobb_deg(corners: np.ndarray, upper: int, lower: int) -> float:
    """Cobb angle of one curve measured between its (coronal) end vertebrae's mid-lines."""
    t = vertebra_tilts_deg(corners)
    return float(abs(t[upper] - t[lower]))


def apex_index(centres: np.ndarray, upper: int, lower: int) -> int:
    """Vertebra between the end vertebrae farthest from the line joining their centres."""
    a, b = centres[upper], centres[lower]
    d = b - a
    n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
    dist = np.abs((centres[upper:lower + 1] - a) @ n)
    return int(upper + np.argmax(dist))
