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
       ``tilt_fit="min_rect"`` reads the tilt from the minimum-area enclosing rectangle instead
       (:func:`min_rect_tilt`; chosen against on validation, see ``docs/clinical.md``).
    3. The first guess, and the sanity reference, for a piece's tilt is the perpendicular to the
       line through its neighbouring pieces' centres (robust even where the centreline fails at
       a badly drawn end). A piece whose fit strays more than ``max_deviation_deg`` from that
       reference is not shaped like a vertebral body in line with its neighbours and is left
       out. A piece of the main chain still taller than ``merged_factor`` segments (no neck:
       several merged vertebrae) falls back to the centreline's tilt, sampled once per typical
       segment (samples straying as far are dropped); ``VertebraTilt.source`` records which.
       With ``merged_split="expected"`` (opt-in) such a piece is instead cut into pieces of one
       expected segment height each along the centreline, and each is measured like any other
       piece, on its end plates but not on its cuts (:func:`_split_merged`; ``source="split"``):
       the centreline's tilt overestimates the end plates' (see Why), and merged vertebrae are a
       visible share of the error budget (``docs/clinical.md``).
    The tilts, at each vertebra's centre and approximate level position, then go through the same
    curve finding as landmarks (:func:`cobb_from_vertebrae`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from r2mfnet.errors import ConfigError, MeasurementError
from r2mfnet.measure.centreline import Centreline, _as_mask, extract_centreline, select_chain
from r2mfnet.measure.cobb import CobbResult, _curves_from_profile, _result
from r2mfnet.measure.levels import level_boundaries

_CHAIN_KEYS = (
    "size_fraction", "min_component_fraction", "lateral_tolerance", "max_gap_fraction", "min_chain_fraction")


@dataclass(frozen=True)
class VertebraTilt:
    """One vertebra (or fallback sample): centre, mid-line tilt, level position, how measured.

    ``source`` is ``"shape"`` (end-plate fit), ``"centreline"`` (fallback of a merged piece),
    ``"split"`` (end-plate fit of a cut of a merged piece, ``merged_split="expected"``) or
    ``"gap"`` (a vertebra the mask missed, or whose piece was left out, placed between its
    neighbours and read from the radiograph: :class:`r2mfnet.inference.corner_refiner.CornerRefiner`);
    ``extent`` its height perpendicular to its mid-line and ``width`` its extent along it, in
    pixels (0 for fallback samples; the width is what :mod:`r2mfnet.measure.sanity` compares).
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


Plates = tuple[bool, bool]
"""Which outlines of a piece are end plates: ``(upper, lower)``; the other is a cut."""
BOTH_PLATES: Plates = (True, True)


def _plate_step(cols: np.ndarray, top: np.ndarray, bot: np.ndarray, plates: Plates) -> float:
    """Turn (degrees) that levels the fitted outlines: the mean of the two end plates' angles
    (the landmark mid-line), or the one plate's angle when the other outline is a cut."""
    if plates == BOTH_PLATES:
        s_top = np.polyfit(cols, top, 1)[0]
        s_bot = np.polyfit(cols, bot, 1)[0]
        return float(np.degrees(0.5 * (np.arctan(s_top) + np.arctan(s_bot))))
    slope = np.polyfit(cols, top if plates[0] else bot, 1)[0]
    return float(np.degrees(np.arctan(slope)))


def end_plate_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float, core: float = 0.6,
                   passes: int = 3, plates: Plates = BOTH_PLATES) -> tuple[float, float] | None:
    """Mid-line tilt (degrees, positive = right end lower) and height of one vertebra's pixels.

    ``start_deg`` is the first guess (the centreline's perpendicular). The height is the piece's
    extent (2nd-98th percentile) perpendicular to the fitted mid-line, in pixels: a piece much
    taller than a segment holds several vertebrae. Returns ``None`` when the piece is too small
    to fit (fewer than 3 columns in its core). ``plates`` says which outlines are end plates; a
    piece cut out of merged vertebrae has a cut for the other, which says nothing of the tilt
    (it is the centreline's perpendicular by construction), so only the end plate is fitted.
    """
    if not any(plates):
        raise ValueError("plates: at least one outline must be an end plate")
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
        step = _plate_step(cols, top[ok], bot[ok], plates)
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
               small_px: tuple[float, float] = (20.0, 40.0),
               plates: Plates = BOTH_PLATES) -> tuple[float, float] | None:
    """A vertebra's mid-line tilt and height: end-plate fit, blended with moments when small.

    A binary outline only ``w`` pixels wide gives end-plate slopes to about ``1/w`` radian (the
    staircase), several degrees at 20 px, whereas second moments average over all pixels. Below
    ``small_px[0]`` pixels of width the moment tilt is used, above ``small_px[1]`` the end-plate
    fit, linearly blended between (the moment tilt only when the piece is elongated, axis ratio
    >= 1.2, i.e. has a defined axis). ``plates``: :func:`end_plate_tilt`.
    """
    fit = end_plate_tilt(ys, xs, start_deg, core, plates=plates)
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


TILT_FITS = ("end_plates", "min_rect")
"""How a vertebra's tilt is read from its pixels (``tilt_fit`` of :func:`vertebra_tilts`)."""

MERGED_SPLITS = ("centreline", "expected")
"""What a merged piece without necks becomes (``merged_split`` of :func:`vertebra_tilts`):
samples of the centreline's tilt (default) or cuts of one expected segment height, each fitted."""


def check_merged_split(merged_split: str) -> None:
    """A :class:`~r2mfnet.errors.ConfigError` (one line, naming the key) unless ``merged_split``
    is one of :data:`MERGED_SPLITS`; checked before any work, so a typo fails on every mask."""
    if merged_split not in MERGED_SPLITS:
        raise ConfigError(
            f"merged_split must be one of {', '.join(MERGED_SPLITS)}, got {merged_split!r}")


def min_rect_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float) -> float:
    """Tilt of the side of the piece's minimum-area enclosing rectangle nearest ``start_deg``.

    The rectangle rests on the piece's convex hull, so a ragged or rounded outline (a small
    vertebra predicted at a model's input size and mapped back) moves it less than it moves a
    line through the outline's extreme points per column. It rests on one hull edge, so a wedged
    vertebra is read along one of its end plates (the one giving the smaller rectangle), not
    along their mean as the end-plate fit reads it.
    """
    import cv2

    (_, _), (_, _), angle = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
    best = min((angle + k * 90.0 for k in (-2, -1, 0, 1, 2)),
               key=lambda a: abs((a - start_deg + 90.0) % 180.0 - 90.0))
    return _wrap_near(best, start_deg)


def piece_tilt(ys: np.ndarray, xs: np.ndarray, start_deg: float, core: float = 0.6,
               tilt_fit: str = "end_plates",
               plates: Plates = BOTH_PLATES) -> tuple[float, float] | None:
    """A piece's mid-line tilt and height by ``tilt_fit``: ``"end_plates"`` (:func:`shape_tilt`)
    or ``"min_rect"`` (:func:`min_rect_tilt`; the height still from the end-plate frame, which
    decides whether the piece holds merged vertebrae). ``None``: too small to fit. ``plates``
    (:func:`end_plate_tilt`) concerns the end-plate fit only."""
    if tilt_fit not in TILT_FITS:
        raise ValueError(f"tilt_fit must be one of {TILT_FITS}, got {tilt_fit!r}")
    fit = shape_tilt(ys, xs, start_deg, core, plates=plates)
    if fit is None or tilt_fit == "end_plates":
        return fit
    return min_rect_tilt(ys, xs, start_deg), fit[1]


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


@dataclass(frozen=True)
class _Pixels:
    """The mask's foreground pixels with their part label and nearest centreline sample, and per
    part (index = label): area, centre, whether it belongs to the main chain, whether measured."""

    ys: np.ndarray
    xs: np.ndarray
    label: np.ndarray
    arc: np.ndarray
    area: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    in_chain: np.ndarray
    candidate: np.ndarray
    median_chain_area: float


class _Piece(NamedTuple):
    """One piece to measure: its pixel indices (into :class:`_Pixels`), whether it belongs to
    the main chain, and, for a cut of a merged piece (``merged_split="expected"``), whether its
    upper / lower outline is a cut rather than an end plate."""

    idx: np.ndarray
    chained: bool
    cut_above: bool = False
    cut_below: bool = False

    @property
    def split(self) -> bool:
        """Cut out of a merged piece by :func:`_split_merged`."""
        return self.cut_above or self.cut_below

    @property
    def plates(self) -> Plates:
        """The outlines the end-plate fit reads: those that are not cuts. A piece cut on both
        sides has no end plate of its own; it reads the two cuts, i.e. the centreline's
        perpendicular there, as the centreline fallback would."""
        plates = (not self.cut_above, not self.cut_below)
        return plates if any(plates) else BOTH_PLATES


def _segment_px(cl: Centreline, level_weights: Sequence[float] | str | None) -> np.ndarray:
    """Typical segment height (vertebra + disc) at each centreline sample, in pixels."""
    seg_frac = np.diff(level_boundaries(level_weights))
    level_idx = np.clip(np.floor(cl.level_pos).astype(int), 0, seg_frac.size - 1)
    return seg_frac[level_idx] * (cl.ys.size - 1)


def _candidate_parts(m: np.ndarray, chain: np.ndarray, cl: Centreline, min_piece_fraction: float,
                     lateral_reach: float) -> _Pixels:
    """Label the parts; measure the main chain's and the vertebra-sized ones beside it."""
    labels, k = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    area = np.bincount(lab, minlength=k + 1)
    in_chain = np.bincount(lab, weights=chain[ys, xs], minlength=k + 1) > 0
    tree = cKDTree(np.stack([cl.xs, cl.ys], axis=1))
    _, arc = tree.query(np.stack([xs, ys], axis=1).astype(np.float64))
    cx = np.bincount(lab, weights=xs, minlength=k + 1) / np.maximum(area, 1)
    cy = np.bincount(lab, weights=ys, minlength=k + 1) / np.maximum(area, 1)
    chain_areas = area[1:][in_chain[1:]]
    med_chain = float(np.median(chain_areas)) if chain_areas.size else float(area[1:].max())
    width = cl.median_width() or 1.0
    c_dist, _ = tree.query(np.stack([cx, cy], axis=1))
    candidate = in_chain.copy()
    for c in range(1, k + 1):
        if in_chain[c] or not min_piece_fraction * med_chain <= area[c] <= 4.0 * med_chain:
            continue
        inside = cl.top <= cy[c] <= cl.bottom  # between the spine's ends
        candidate[c] = inside and c_dist[c] <= lateral_reach * width
    return _Pixels(ys, xs, lab, np.asarray(arc, dtype=np.int64), area, cx, cy, in_chain, candidate, med_chain)


def _pieces(px: _Pixels, cl: Centreline, seg_px: np.ndarray, split_factor: float,
            min_piece_fraction: float) -> list[_Piece]:
    """Every piece (:class:`_Piece`), cut at necks, top to bottom."""
    pieces: list[_Piece] = []
    k = px.area.size - 1
    order = np.argsort(px.label, kind="stable")
    splits = np.searchsorted(px.label[order], np.arange(1, k + 2))
    for c in range(1, k + 1):
        if not px.candidate[c]:
            continue
        idx = order[splits[c - 1] : splits[c]]
        s = px.arc[idx]
        s0, s1 = int(np.percentile(s, 2)), int(np.percentile(s, 98))
        seg = float(seg_px[(s0 + s1) // 2])
        cuts = _neck_cuts(cl.widths, s0, s1, seg, split_factor) if s1 - s0 > split_factor * seg else []
        edges = [int(s.min()) - 1, *cuts, int(s.max())]
        for a, b in zip(edges[:-1], edges[1:]):
            part = idx[(s > a) & (s <= b)]
            if part.size:
                pieces.append(_Piece(part, bool(px.in_chain[c])))
    pieces = [p for p in pieces if p.idx.size >= min_piece_fraction * px.median_chain_area]
    return _top_to_bottom(pieces, px)


def _top_to_bottom(pieces: list[_Piece], px: _Pixels) -> list[_Piece]:
    """``pieces`` sorted by their mean row (stable)."""
    rows = [float(px.ys[p.idx].mean()) for p in pieces]
    return [pieces[i] for i in np.argsort(rows, kind="stable")]


def _centre_sample(part: np.ndarray, px: _Pixels, cl: Centreline) -> int:
    """The centreline sample at the median position of a piece's pixels."""
    return int(np.clip(round(float(np.median(px.arc[part]))), 0, cl.ys.size - 1))


def _centres(pieces: list[_Piece], px: _Pixels) -> np.ndarray:
    """``(x, y)`` centre of every piece, shape ``(n, 2)``."""
    return np.array([[px.xs[p.idx].mean(), px.ys[p.idx].mean()] for p in pieces])


def _reference_tilt(i: int, centres: np.ndarray, cl: Centreline, centre: int) -> float:
    """First guess and sanity reference of piece ``i``'s tilt: perpendicular to the line through
    its neighbouring pieces' centres (robust where the centreline fails, e.g. at a badly drawn
    end), else the centreline's perpendicular; brought into [-60, 60] degrees."""
    ref = _wrap_near(float(cl.tilt_deg[centre]), 0.0)
    if len(centres) >= 2:
        d = centres[min(i + 1, len(centres) - 1)] - centres[max(i - 1, 0)]
        ref = float(-np.degrees(np.arctan2(d[0], d[1])))
    return float(np.clip(ref, -60.0, 60.0))


def _fallback_samples(lo: int, hi: int, seg: float, start: float, cl: Centreline,
                      max_deviation_deg: float) -> list[VertebraTilt]:
    """A merged piece without necks: the centreline's tilt, once per typical segment along it;
    samples where the centreline strays from the line of the pieces' centres are left out."""
    count = max(1, int(round(float(hi - lo) / max(seg, 1.0))))
    out = []
    for j in np.linspace(lo, hi, count + 2)[1:-1] if count > 1 else [0.5 * (lo + hi)]:
        j = int(round(j))
        t = _wrap_near(float(cl.tilt_deg[j]), 0.0)
        if abs(t - start) <= max_deviation_deg:
            out.append(VertebraTilt(float(cl.xs[j]), float(cl.ys[j]), t, float(cl.level_pos[j]), "centreline", 0.0))
    return out


def _piece_tilts(piece: _Piece, start: float, px: _Pixels, cl: Centreline,
                 seg_px: np.ndarray, merged_factor: float, max_deviation_deg: float,
                 core: float, tilt_fit: str) -> list[VertebraTilt]:
    """One piece's tilt (end-plate fit), or the fallback samples of a merged chain piece; none
    for a fragment or a piece out of line with its neighbours (module docstring, step 3).

    A cut of a merged piece (``piece.split``) is one expected segment long by construction, so
    it is not tested for being merged again: it is measured (on its end plate, not its cuts:
    ``piece.plates``), or left out by the same sanity."""
    part = piece.idx
    ys, xs = px.ys[part].astype(np.float64), px.xs[part].astype(np.float64)
    s = px.arc[part]
    centre = _centre_sample(part, px, cl)
    seg = float(seg_px[centre])
    fit = piece_tilt(ys, xs, start, core, tilt_fit, piece.plates)
    if fit is None:
        return []  # too small to fit: a fragment
    tilt, height = fit
    if piece.split or height <= merged_factor * seg:
        if abs(tilt - start) > max_deviation_deg:
            return []  # not shaped like a vertebral body in line with its neighbours
        r = np.radians(tilt)
        along = float(np.ptp(xs * np.cos(r) + ys * np.sin(r)))
        return [VertebraTilt(float(xs.mean()), float(ys.mean()), float(tilt),
                             float(cl.level_pos[centre]), "split" if piece.split else "shape",
                             height, along)]
    if not piece.chained:
        return []
    lo, hi = int(np.percentile(s, 2)), int(np.percentile(s, 98))
    return _fallback_samples(lo, hi, seg, start, cl, max_deviation_deg)


def _is_merged(piece: _Piece, start: float, px: _Pixels, cl: Centreline, seg_px: np.ndarray,
               merged_factor: float, core: float, tilt_fit: str) -> bool:
    """Whether :func:`_piece_tilts` would take ``piece`` for several merged vertebrae: a main
    chain piece whose fitted height exceeds ``merged_factor`` typical segments."""
    if not piece.chained:
        return False
    fit = piece_tilt(px.ys[piece.idx].astype(np.float64), px.xs[piece.idx].astype(np.float64),
                     start, core, tilt_fit)
    seg = float(seg_px[_centre_sample(piece.idx, px, cl)])
    return fit is not None and fit[1] > merged_factor * seg


def _expected_cuts(part: np.ndarray, px: _Pixels, seg_px: np.ndarray) -> list[np.ndarray]:
    """A merged piece cut into ``n = max(2, round(length / segment height))`` pieces of one
    expected segment height each along the centreline, perpendicular to it (pixels go by their
    nearest centreline sample, as at necks). The length is the 2nd-98th percentile span of the
    pixels' centreline positions, counted in typical segment heights (``seg_px``, the heights
    that called the piece merged); over a few vertebrae of one region these hardly change, so
    the pieces are of equal length, and a long merged run gets the right number of pieces.

    The cuts stay where the expected heights put them and are not moved to the narrowest point
    nearby: the piece has no neck (no point 25 % narrower than both sides, else
    :func:`_neck_cuts` would have cut it), so its width minimum is shallow, and in a radiograph
    it is as likely the waist of a vertebral body as a filled disc. Whole vertebrae with their
    inner discs, cut evenly, miss the disc middles by a few percent of a segment.
    """
    in_segments = np.concatenate([[0.0], np.cumsum(1.0 / np.maximum(seg_px[:-1], 1.0))])
    t = in_segments[px.arc[part]]  # each pixel's centreline position, in segment heights
    lo, hi = float(np.percentile(t, 2)), float(np.percentile(t, 98))
    n = max(2, int(round(hi - lo)))
    bounds = np.linspace(lo, hi, n + 1)[1:-1]
    which = np.searchsorted(bounds, t, side="left")  # t <= bounds[0] -> piece 0, ...
    return [part[which == j] for j in range(n) if np.any(which == j)]


def _split_merged(pieces: list[_Piece], px: _Pixels, cl: Centreline, seg_px: np.ndarray,
                  merged_factor: float, core: float, tilt_fit: str) -> list[_Piece]:
    """``merged_split="expected"``: every piece that would fall back to the centreline's tilt
    (:func:`_is_merged`, judged with the same first guess as in :func:`vertebra_tilts`) replaced
    by its cuts of one expected segment height (:func:`_expected_cuts`), top to bottom.

    The cuts then join the list before any tilt is read, so each is fitted and sanity-checked
    against its neighbours (the other cuts included) like every other piece; the end-plate fit
    reads only the outlines that are not cuts (:attr:`_Piece.plates`)."""
    centres = _centres(pieces, px)
    out: list[_Piece] = []
    for i, piece in enumerate(pieces):
        centre = _centre_sample(piece.idx, px, cl)
        start = _reference_tilt(i, centres, cl, centre)
        if _is_merged(piece, start, px, cl, seg_px, merged_factor, core, tilt_fit):
            cuts = _expected_cuts(piece.idx, px, seg_px)
            out += [_Piece(q, True, cut_above=j > 0, cut_below=j < len(cuts) - 1)
                    for j, q in enumerate(cuts)]
        else:
            out.append(piece)
    return _top_to_bottom(out, px)


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
    tilt_fit: str = "end_plates",
    merged_split: str = "centreline",
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
    ``tilt_fit`` chooses how each piece's tilt is read (:func:`piece_tilt`). ``merged_split``
    chooses what a merged chain piece without necks becomes: ``"centreline"`` (default) the
    centreline's tilt once per segment, ``"expected"`` cuts of one expected segment height, each
    fitted (:func:`_split_merged`); another value is a one-line
    :class:`~r2mfnet.errors.ConfigError`. Steps: :func:`_candidate_parts`, :func:`_pieces`
    (then :func:`_split_merged` if asked), :func:`_piece_tilts` per piece.
    """
    check_merged_split(merged_split)
    m = _as_mask(mask)
    cl = centreline if centreline is not None else extract_centreline(
        m, level_weights=level_weights, **centreline_kwargs)
    chain, _ = select_chain(m, **{k: v for k, v in centreline_kwargs.items() if k in _CHAIN_KEYS})
    if cl.ys.size < 3:
        raise MeasurementError("the centreline is too short to measure vertebrae")
    seg_px = _segment_px(cl, level_weights)
    px = _candidate_parts(m, chain, cl, min_piece_fraction, lateral_reach)
    pieces = _pieces(px, cl, seg_px, split_factor, min_piece_fraction)
    if not pieces:
        raise MeasurementError("the spine mask has no parts along its centreline")
    if merged_split == "expected":
        pieces = _split_merged(pieces, px, cl, seg_px, merged_factor, core, tilt_fit)
    centres = _centres(pieces, px)
    out: list[VertebraTilt] = []
    for i, piece in enumerate(pieces):
        start = _reference_tilt(i, centres, cl, _centre_sample(piece.idx, px, cl))
        out += _piece_tilts(piece, start, px, cl, seg_px, merged_factor, max_deviation_deg,
                            core, tilt_fit)
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


TiltRefiner = Callable[[Sequence[VertebraTilt]], list[VertebraTilt]]
"""Re-reads the mask's vertebrae's tilts from elsewhere (e.g. the radiograph itself:
:class:`r2mfnet.inference.corner_refiner.CornerRefiner`): the vertebrae in the same order, and
it may add vertebrae the mask missed between them (``source="gap"``), in level order."""


def cobb_from_mask_vertebrae(
    mask: np.ndarray, min_curve_deg: float = 5.0, anatomy: bool = True,
    refine: TiltRefiner | None = None, **kwargs
) -> tuple[Centreline, CobbResult]:
    """Centreline and Cobb angles of a spine mask by the end-plate method.

    ``kwargs`` go to :func:`vertebra_tilts` (``tilt_fit``, ``merged_split``, ...). ``refine``,
    if given, replaces the vertebrae's tilts before anything else reads them (the mask still
    says where each vertebra is, the refiner how it is tilted; it may add vertebrae the mask
    missed, see :data:`TiltRefiner`). The
    vertebrae then pass the anatomical sanity rule
    (:func:`r2mfnet.measure.sanity.check_anatomy`: pieces of the sacrum below L5 and the like
    dropped, at most 17 vertebrae, doubtful results flagged in ``CobbResult.flags``, as are
    vertebrae the refiner read where the mask missed them) unless ``anatomy=False``. Raises :class:`MeasurementError` like
    :func:`~r2mfnet.measure.cobb.cobb_from_mask`.
    """
    from dataclasses import replace

    from r2mfnet.measure.sanity import check_anatomy

    cl, vts = vertebra_tilts(mask, **kwargs)
    if refine is not None:
        vts = list(refine(vts))
    if not anatomy:
        return cl, cobb_from_vertebrae(vts, min_curve_deg)
    check = check_anatomy(vts)
    return cl, replace(cobb_from_vertebrae(list(check.kept), min_curve_deg),
                       flags=check.flags + _gap_flags(check.kept))


def _gap_flags(vertebrae: Sequence[VertebraTilt]) -> tuple[str, ...]:
    """A flag when the refiner read vertebrae in gaps between the measured ones (``source="gap"``:
    the mask missed them, or their pieces were left out as misshapen): the angle may rest on
    them, and the mask is worth a look."""
    read = sum(v.source == "gap" for v in vertebrae)
    return (f"{read} vertebra(e) read from the radiograph in gaps between the measured ones",) if read else ()
