"""The spine centreline, and its tilt, from a binary spine mask.

Steps (each justified where it is done in the code):

1. **Main chain of parts** (8-connected components). Specks below ``min_component_fraction`` of
   the largest part are dropped outright. Starting from the largest part, the chain grows by
   repeatedly adding the part nearest (vertically) to it whose centroid lies within
   ``lateral_tolerance`` x the chain's median width of the chain's midline (inside the chain's
   height range), or of the chain's end direction extrapolated beyond its ends (through the
   centroids of the last parts), with a vertical gap of at most ``max_gap_fraction`` of the
   mask's height. Parts smaller than ``size_fraction`` x (spine width)^2, i.e. well under one
   vertebra, join only **inside** the chain's height range (fragments of a vertebra), never
   beyond its ends, so a speck above T1 or below L5 cannot lengthen the spine. When that chain
   holds less than ``min_chain_fraction`` of the mask, it is **rebuilt** from the heaviest
   top-to-bottom path of large parts (:func:`_heaviest_path`), grown the same way, and kept if it
   holds more: growing from the largest part fails when that part is a curved block of merged
   vertebrae or lies among fragments. The result says so (``Centreline.chain_rebuilt``), and the
   review page flags it.
2. **Checks**: the chain must be at least ``min_height`` rows tall, cover at least
   ``min_row_coverage`` of its rows, have no gap over ``max_gap_fraction`` of its height, and
   hold at least ``min_chain_fraction`` of the mask's area. Otherwise
   :class:`~r2mfnet.errors.MeasurementError` says which test failed: a number from a broken mask
   would be meaningless.
3. **First midline**: mass-weighted row centres (row pixel sums and x-sums are smoothed before
   dividing, so the thin corner rows of a tilted vertebra weigh little and gaps need no special
   case).
4. **Refinement** (``n_refine`` passes): re-centre the midline along cuts **perpendicular to
   the current centreline**. A vertebra is roughly perpendicular to the spine, so such a cut runs
   parallel to its end plates and, when it crosses the vertebra side to side, its midpoint lies
   on the vertebra's axis; a horizontal cut through a tilted vertebra is centred off the axis.
   Only such "full" cuts (mass >= 90 % of the local maximum) set the centre; before the first
   and after the last one the line of the full cuts is continued, then the ends are trimmed to
   the outer end plates.
5. **Smoothing and tilt**: the centreline is resampled every pixel of arc length and smoothed by
   local linear regression with Gaussian weights of sd ``smooth_fraction`` x chain height
   (default 3.5 %, about half a vertebra: it removes the vertebra-by-vertebra stair step while
   attenuating a whole-spine S curve by only a few percent). Local regression needs no padding
   at the ends, where the end vertebrae of many curves lie. The tilt is
   ``-atan2(dx/ds, dy/ds)`` in degrees: the tilt of a line perpendicular to the centreline, with
   the sign convention of :func:`r2mfnet.measure.landmarks.vertebra_tilts_deg` (positive =
   right end lower). It is the end-plate tilt of a vertebra perpendicular to the centreline, so a
   Cobb angle is a difference of tilts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import ndimage

from r2mfnet.errors import MeasurementError
from r2mfnet.measure.levels import fraction_to_level_position


@dataclass(frozen=True)
class Centreline:
    """The smoothed spine centreline, sampled every pixel of arc length from top to bottom.

    ``ys`` rows (float, increasing), ``xs`` midline x, ``tilt_deg`` tilt of the perpendicular to
    the centreline (degrees, positive = right end lower), ``widths`` the mask's width across the
    centreline at each sample (about 0 in gaps between vertebrae),
    ``level_pos`` approximate level position (0 = top of T1 .. 17 = bottom of L5, by arc
    length, see :mod:`r2mfnet.measure.levels`), ``smoothing_px`` the Gaussian sigma used,
    ``n_components`` / ``n_dropped`` components kept in / dropped from the main chain,
    ``chain_rebuilt`` whether the chain is the rebuilt one (:func:`select_chain`): the mask was
    broken for the usual rule, so the result deserves a look.
    """

    ys: np.ndarray
    xs: np.ndarray
    tilt_deg: np.ndarray
    widths: np.ndarray
    level_pos: np.ndarray
    smoothing_px: float
    n_components: int
    n_dropped: int
    image_shape: tuple[int, int] = field(default=(0, 0))
    chain_rebuilt: bool = False

    @property
    def top(self) -> float:
        return float(self.ys[0])

    @property
    def bottom(self) -> float:
        return float(self.ys[-1])

    @property
    def height(self) -> float:
        return float(self.ys[-1] - self.ys[0])

    def median_width(self) -> float:
        w = self.widths[self.widths > 0]
        return float(np.median(w)) if w.size else 0.0


# ----------------------------------------------------------------------------- components
@dataclass
class _Components:
    labels: np.ndarray  # (H, W) int, 0 = background, 1..K kept components
    area: np.ndarray  # (K+1,)
    cx: np.ndarray
    cy: np.ndarray
    y0: np.ndarray  # first row
    y1: np.ndarray  # last row
    row_count: np.ndarray  # (K+1, H) pixels per row
    row_xsum: np.ndarray  # (K+1, H) sum of x per row
    n_specks: int
    total_area: int


def _components(mask: np.ndarray, min_component_fraction: float) -> _Components:
    structure = np.ones((3, 3), dtype=bool)  # 8-connected: diagonal touches are one piece
    labels, k = ndimage.label(mask, structure=structure)
    area = np.bincount(labels.ravel(), minlength=k + 1).astype(np.int64)
    area[0] = 0
    largest = int(area.max())
    keep = area >= max(1.0, min_component_fraction * largest)
    keep[0] = False
    remap = np.zeros(k + 1, dtype=np.int64)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    labels = remap[labels]
    k2 = int(keep.sum())
    h, _ = mask.shape
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    idx = lab * h + ys
    row_count = np.bincount(idx, minlength=(k2 + 1) * h).reshape(k2 + 1, h).astype(np.float64)
    row_xsum = np.bincount(idx, weights=xs, minlength=(k2 + 1) * h).reshape(k2 + 1, h)
    a = row_count.sum(axis=1)
    rows = np.arange(h, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = row_xsum.sum(axis=1) / a
        cy = (row_count * rows).sum(axis=1) / a
    present = row_count > 0
    y0 = np.where(present.any(axis=1), present.argmax(axis=1), 0)
    y1 = np.where(present.any(axis=1), h - 1 - present[:, ::-1].argmax(axis=1), 0)
    return _Components(
        labels, a, cx, cy, y0, y1, row_count, row_xsum, int(k - k2), int(area.sum())
    )


def _end_line(
    comp: "_Components", chain: set[int], mid: np.ndarray, full: np.ndarray, at_top: bool
) -> tuple[float, float, float]:
    """(y, x, slope dx/dy) from which to extrapolate the chain beyond one end.

    With two or more parts, a line through the centroids of the (up to) three parts at that end:
    centroids are robust, whereas the row centres of one strongly tilted vertebra run along its
    end plates, not along the spine. A single tall part (a merged spine) uses a line fit to its
    full-width row centres over the end quarter; a single short part gives a vertical line
    through its centroid. The slope is clipped to 45 degrees.
    """
    ids = sorted(chain, key=lambda c: comp.cy[c])
    end = ids[:3] if at_top else ids[-3:]
    if len(end) >= 2:
        slope, icpt = np.polyfit(comp.cy[end], comp.cx[end], 1)
        y = float(comp.cy[end[0] if at_top else end[-1]])
        return y, float(icpt + slope * y), float(np.clip(slope, -1.0, 1.0))
    c = end[0]
    height = comp.y1[c] - comp.y0[c] + 1
    if full.size >= 6 and height >= 3 * comp.area[c] / max(height, 1):
        n = max(3, full.size // 4)
        sel = full[:n] if at_top else full[-n:]
        slope, icpt = np.polyfit(sel.astype(np.float64), mid[sel], 1)
        y = float(sel[0] if at_top else sel[-1])
        return y, float(icpt + slope * y), float(np.clip(slope, -1.0, 1.0))
    return float(comp.cy[c]), float(comp.cx[c]), 0.0


def select_chain(
    mask: np.ndarray,
    size_fraction: float = 0.1,
    min_component_fraction: float = 0.005,
    lateral_tolerance: float = 1.0,
    max_gap_fraction: float = 0.2,
    min_chain_fraction: float = 0.75,
) -> tuple[np.ndarray, dict[str, int | float | bool]]:
    """The main chain of components of a spine mask, and counts of what was kept and dropped.

    Returns ``(chain_mask, info)`` with ``info = {"n_components", "n_dropped", "chain_fraction",
    "rebuilt"}`` (``chain_fraction`` = chain area / mask area). See the module docstring for the
    rule. When the chain grown from the largest part holds less than ``min_chain_fraction`` of
    the mask, the chain is rebuilt from the heaviest top-to-bottom path of parts
    (:func:`_heaviest_path`) and kept if it holds more (``rebuilt=True``): growing from the
    largest part fails when that part is a curved block of merged vertebrae (the line through
    the end parts' centroids then points away from the spine) or lies among fragments.
    """
    m = _as_mask(mask)
    comp = _components(m, min_component_fraction)
    seed = int(np.argmax(comp.area))
    seed_rows = comp.row_count[seed][comp.row_count[seed] > 0]
    # "Large" is relative to the area of a square as wide as the spine (about one vertebra),
    # not to the largest part, which may be several merged vertebrae.
    spine_width = float(np.median(seed_rows))
    big = comp.area >= size_fraction * spine_width**2
    extent = comp.y1[big].max() - comp.y0[big].min() + 1 if big[1:].any() else m.shape[0]
    max_gap = max_gap_fraction * extent
    chain = _grow_chain(comp, {seed}, big, max_gap, lateral_tolerance)
    rebuilt = False
    if _chain_fraction(comp, chain) < min_chain_fraction:
        path = _heaviest_path(comp, big, max_gap, lateral_tolerance * spine_width)
        other = _grow_chain(comp, set(path), big, max_gap, lateral_tolerance) if path else chain
        if _chain_fraction(comp, other) > _chain_fraction(comp, chain):
            chain, rebuilt = other, True
    chain_mask = np.isin(comp.labels, np.fromiter(chain, dtype=np.int64))
    info = {
        "n_components": len(chain),
        "n_dropped": comp.area.size - 1 - len(chain) + comp.n_specks,
        "chain_fraction": _chain_fraction(comp, chain),
        "rebuilt": rebuilt,
    }
    return chain_mask, info


def _chain_fraction(comp: _Components, chain: set[int]) -> float:
    return float(comp.area[list(chain)].sum() / max(comp.total_area, 1))


def _grow_chain(
    comp: _Components, chain: set[int], big: np.ndarray, max_gap: float, lateral_tolerance: float
) -> set[int]:
    """Grow ``chain`` part by part (step 1 of the module docstring): the nearest part beside it
    near its midline, or a large part beyond an end near the extrapolated end direction."""
    chain = set(chain)
    h = comp.labels.shape[0]
    count = comp.row_count[list(chain)].sum(axis=0)
    xsum = comp.row_xsum[list(chain)].sum(axis=0)
    undecided = set(range(1, comp.area.size)) - chain
    while undecided:
        rows = np.nonzero(count > 0)[0]
        mid = np.zeros(h)
        mid[rows] = xsum[rows] / count[rows]
        top, bot = int(rows[0]), int(rows[-1])
        width = float(np.median(count[rows]))
        full = rows[count[rows] >= 0.5 * width]
        best, best_key = None, None
        for c in undecided:
            cy, cx = comp.cy[c], comp.cx[c]
            if top <= cy <= bot:  # beside the chain: compare with its midline at that row
                gap = 0
                x_pred = float(np.interp(cy, full, mid[full]))
                tol = lateral_tolerance * width
            else:  # beyond an end: only large parts, near the extrapolated end direction
                if not big[c]:
                    continue
                at_top = cy < top
                gap = max(0, top - comp.y1[c]) if at_top else max(0, comp.y0[c] - bot)
                if gap > max_gap:
                    continue
                y_e, x_e, slope = _end_line(comp, chain, mid, full, at_top)
                x_pred = x_e + slope * (cy - y_e)
                tol = lateral_tolerance * width + 0.25 * abs(cy - y_e)
            if abs(cx - x_pred) > tol:
                continue
            key = (gap, -comp.area[c])
            if best_key is None or key < best_key:
                best, best_key = c, key
        if best is None:
            break
        chain.add(best)
        undecided.discard(best)
        count += comp.row_count[best]
        xsum += comp.row_xsum[best]
    return chain


MAX_PATH_PARTS = 100
"""The rebuilt chain's path is sought among this many largest parts at most."""


def _heaviest_path(
    comp: _Components, big: np.ndarray, max_gap: float, lateral_px: float, max_slope: float = 0.5
) -> list[int]:
    """The large parts on the top-to-bottom path of greatest total area (dynamic programming).

    Consecutive parts of the path (ordered by centroid row) must be separated by at most
    ``max_gap`` rows and their centroids by at most ``lateral_px + max_slope * (vertical
    distance)`` sideways (a spine runs within about 27 degrees of vertical from one part to the
    next), and a step may not pass by a large part whose centroid lies within ``lateral_px`` of
    the step's line (that part is on the path's own course: a step past it would jump to a
    second, displaced column). Unlike growing from the largest part, this looks at the whole mask
    at once, so one curved block of merged vertebrae or a cluster of fragments cannot steer it
    off the spine.
    """
    large = [int(c) for c in np.nonzero(big)[0] if c > 0]
    # A spine has a few dozen parts at most; the cap keeps the cubic search fast on a mask of noise.
    large = sorted(large, key=lambda c: -comp.area[c])[:MAX_PATH_PARTS]
    nodes = sorted(large, key=lambda c: comp.cy[c])
    if not nodes:
        return []
    score = {c: float(comp.area[c]) for c in nodes}
    prev: dict[int, int | None] = {c: None for c in nodes}
    for j, b in enumerate(nodes):
        for i, a in enumerate(nodes[:j]):
            dy = comp.cy[b] - comp.cy[a]
            if dy <= 0 or comp.y0[b] - comp.y1[a] > max_gap:
                continue
            if abs(comp.cx[b] - comp.cx[a]) > lateral_px + max_slope * dy:
                continue
            passed = [c for c in nodes[i + 1 : j] if comp.cy[a] < comp.cy[c] < comp.cy[b]]
            line_x = comp.cx[a] + (comp.cx[b] - comp.cx[a]) * (comp.cy[passed] - comp.cy[a]) / dy
            if passed and np.any(np.abs(comp.cx[passed] - line_x) <= lateral_px):
                continue
            if score[a] + comp.area[b] > score[b]:
                score[b], prev[b] = score[a] + float(comp.area[b]), a
    end: int | None = max(nodes, key=lambda c: score[c])
    path = []
    while end is not None:
        path.append(end)
        end = prev[end]
    return path[::-1]


def _as_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise MeasurementError(f"a spine mask must be 2-D (H x W), got shape {m.shape}")
    if m.dtype != bool:
        m = m > 0
    if not m.any():
        raise MeasurementError("the spine mask is empty: there is no spine to measure")
    return m


# ----------------------------------------------------------------------------- centreline
def _local_poly(x: np.ndarray, sigma: float, degree: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Value and first derivative of ``x`` (unit-spaced samples) by local polynomial regression.

    At each sample a polynomial of ``degree`` is fitted with Gaussian weights (sd ``sigma``,
    truncated at 3 sd) to the samples that exist, so the ends need no padding: near an end the fit
    is one-sided, and with ``degree=2`` the slope there is unbiased for a curving spine, whereas a
    reflected-padding Gaussian derivative reads the slope about 0.8 sigma inside the end.
    """
    n = x.size
    r = max(1, int(np.ceil(3 * sigma)))
    d = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (d / sigma) ** 2)
    ones = np.ones(n)
    k = degree
    # S[m](i) = sum_j w(j-i) (j-i)^m, T[m](i) = sum_j w(j-i) (j-i)^m x_j over existing samples.
    S = [ndimage.correlate1d(ones, w * d**m, mode="constant") for m in range(2 * k + 1)]
    T = [ndimage.correlate1d(x, w * d**m, mode="constant") for m in range(k + 1)]
    A = np.stack([np.stack([S[i + j] for j in range(k + 1)], -1) for i in range(k + 1)], -2)
    rhs = np.stack(T, -1)
    A = A + np.eye(k + 1) * 1e-9 * A[:, :1, :1]  # guard against singular windows
    coef = np.linalg.solve(A, rhs[..., None])[..., 0]
    return coef[:, 0], coef[:, 1]


def _checked_chain(m: np.ndarray, size_fraction: float, min_component_fraction: float,
                   lateral_tolerance: float, max_gap_fraction: float, min_height: int,
                   min_row_coverage: float, min_chain_fraction: float) -> tuple[np.ndarray, dict, int, int]:
    """Step 1 and 2: the main chain and its checks; ``(chain, info, top row, bottom row)``."""
    chain, info = select_chain(m, size_fraction, min_component_fraction, lateral_tolerance, max_gap_fraction,
                               min_chain_fraction)
    count = chain.sum(axis=1).astype(np.float64)
    rows = np.nonzero(count > 0)[0]
    top, bot = int(rows[0]), int(rows[-1])
    height = bot - top + 1
    if height < min_height:
        raise MeasurementError(
            f"the spine in the mask is only {height} rows tall (minimum {min_height}): too short "
            "to measure; is the mask empty apart from a fragment?"
        )
    if info["chain_fraction"] < min_chain_fraction:
        raise MeasurementError(
            f"the spine mask is broken: its longest vertical chain of parts holds only "
            f"{100 * info['chain_fraction']:.0f}% of the mask (minimum "
            f"{100 * min_chain_fraction:.0f}%); the rest lies away from it (separated by a gap of "
            f"more than {100 * max_gap_fraction:.0f}% of the spine's height, or off to the side)"
        )
    seg = count[top : bot + 1]
    coverage = float(np.mean(seg > 0))
    if coverage < min_row_coverage:
        raise MeasurementError(
            f"the spine mask is broken: only {100 * coverage:.0f}% of the rows between its top "
            f"and bottom contain spine (minimum {100 * min_row_coverage:.0f}%)"
        )
    empty = np.concatenate([[0], (seg == 0).astype(np.int8), [0]])
    starts, ends = np.nonzero(np.diff(empty) == 1)[0], np.nonzero(np.diff(empty) == -1)[0]
    longest = int((ends - starts).max()) if starts.size else 0
    if longest > max_gap_fraction * height:
        raise MeasurementError(
            f"the spine mask is broken: a gap of {longest} rows ({100 * longest / height:.0f}% of "
            f"its height, maximum {100 * max_gap_fraction:.0f}%) interrupts the spine"
        )
    return chain, info, top, bot


def _initial_midline(chain: np.ndarray, top: int, bot: int, sigma: float) -> np.ndarray:
    """Step 3: mass-weighted row centres as ``(x, y)`` points, one per row of the chain.

    Sums are smoothed before dividing, so thin corner rows of a tilted vertebra weigh little
    and gaps need no special case.
    """
    seg = chain[top : bot + 1].sum(axis=1).astype(np.float64)
    xs_idx = np.arange(chain.shape[1], dtype=np.float64)
    xsum = (chain[top : bot + 1] * xs_idx[None, :]).sum(axis=1)
    cnt_s = ndimage.gaussian_filter1d(seg, sigma, mode="constant")
    xsum_s = ndimage.gaussian_filter1d(xsum, sigma, mode="constant")
    rows_y = np.arange(top, bot + 1, dtype=np.float64)
    ok = cnt_s > 1e-3 * cnt_s.max()
    x0 = np.interp(rows_y, rows_y[ok], xsum_s[ok] / cnt_s[ok])
    return np.stack([x0, rows_y], axis=1)


def _cuts(pts: np.ndarray, u: np.ndarray, sigma: float, poly_degree: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed points, unit tangents, normals, and the sample coordinates of the cuts
    perpendicular to the centreline (offsets ``u`` along the normal): ``(p, t, n, (cy, cx))``."""
    p, t = _smooth_polyline(pts, sigma, poly_degree)
    n = np.stack([t[:, 1], -t[:, 0]], axis=1)  # right-hand normal of a downward tangent
    cx = p[:, None, 0] + u[None, :] * n[:, None, 0]
    cy = p[:, None, 1] + u[None, :] * n[:, None, 1]
    return p, t, n, np.stack([cy, cx])


def _continue_ends(pts: np.ndarray, good: np.ndarray, sigma: float) -> None:
    """Before the first and after the last full cut, continue the line of the full cuts (in
    place; a constant offset would pin the end points where the previous estimate put them)."""
    g = np.nonzero(good)[0]
    span = max(3, int(2 * sigma))
    for lead in (True, False):
        ends = g[g < g[0] + span] if lead else g[g > g[-1] - span]
        rest = np.arange(0, g[0]) if lead else np.arange(g[-1] + 1, good.size)
        if rest.size and ends.size >= 2:
            for dim in (0, 1):
                cf = np.polyfit(ends.astype(np.float64), pts[ends, dim], 1)
                pts[rest, dim] = np.polyval(cf, rest.astype(np.float64))


def _refine_once(pts: np.ndarray, chain_f: np.ndarray, u: np.ndarray, half: float, sigma: float,
                 poly_degree: int) -> np.ndarray | None:
    """Step 4, one pass: re-centre along full perpendicular cuts, continue and trim the ends.

    A vertebra is roughly perpendicular to the spine, so a cut perpendicular to the current
    centreline runs side to side parallel to its end plates and is centred on the vertebra's
    axis, whereas a horizontal cut through a tilted vertebra is centred off the axis near its
    corners. Only "full" cuts, those crossing a vertebra from side to side (mass near the local
    maximum), set the offset: a cut leaving through an end plate is centred off the axis, and at
    the ends of the spine that bias would feed back into the tilt. ``None``: too few full cuts
    (the refinement stops with the previous points).
    """
    p, _, n, coords = _cuts(pts, u, sigma, poly_degree)
    vals = ndimage.map_coordinates(chain_f, coords, order=1, mode="constant", cval=0.0)
    raw = vals.sum(axis=1)
    first = (vals * u[None, :]).sum(axis=1)
    local_max = ndimage.maximum_filter1d(raw, size=2 * int(np.ceil(sigma)) + 1)
    positive = raw[raw > 0]
    if positive.size < 2:
        return None
    good = (raw >= 0.9 * local_max) & (raw >= 0.3 * float(np.median(positive)))
    if good.sum() < 2:
        return None
    idx = np.arange(raw.size, dtype=np.float64)
    off = np.interp(idx, idx[good], first[good] / raw[good])
    off = np.clip(off, -half / 2, half / 2)
    pts = p + off[:, None] * n
    _continue_ends(pts, good, sigma)
    # Trim the ends to the end plates of the first and last vertebra: beyond them the cuts
    # cross only a corner of a tilted vertebra.
    full = np.nonzero(raw >= 0.5 * float(np.median(raw[raw > 0])))[0]
    max_trim = int(0.08 * raw.size)
    i0 = min(int(full[0]), max_trim) if full.size else 0
    i1 = max(int(full[-1]), raw.size - 1 - max_trim) if full.size else raw.size - 1
    return pts[i0 : i1 + 1] if i1 - i0 >= 2 else pts


def extract_centreline(
    mask: np.ndarray,
    *,
    size_fraction: float = 0.1,
    min_component_fraction: float = 0.005,
    lateral_tolerance: float = 1.0,
    max_gap_fraction: float = 0.2,
    smooth_fraction: float = 0.035,
    min_height: int = 30,
    min_row_coverage: float = 0.5,
    min_chain_fraction: float = 0.75,
    level_weights: Sequence[float] | str | None = None,
    n_refine: int = 4,
    poly_degree: int = 1,
) -> Centreline:
    """Centreline of a binary spine mask (spine roughly vertical, T1 at the top).

    The steps of the module docstring: :func:`_checked_chain`, :func:`_initial_midline`,
    ``n_refine`` x :func:`_refine_once`, then smoothing and tilt. Raises
    :class:`MeasurementError` when the mask is empty, when its main chain is shorter than
    ``min_height`` rows, covers fewer than ``min_row_coverage`` of its rows, has a gap taller
    than ``max_gap_fraction`` of its height, or holds less than ``min_chain_fraction`` of the
    mask (the rest lying away from it: the mask is broken, and a number would be meaningless).
    """
    m = _as_mask(mask)
    chain, info, top, bot = _checked_chain(m, size_fraction, min_component_fraction, lateral_tolerance,
                                           max_gap_fraction, min_height, min_row_coverage, min_chain_fraction)
    sigma = max(1.0, smooth_fraction * (bot - top + 1))
    pts = _initial_midline(chain, top, bot, sigma)
    seg = chain[top : bot + 1].sum(axis=1)
    half = float(np.percentile(seg[seg > 0], 95))
    u = np.arange(-np.ceil(half), np.ceil(half) + 1)
    chain_f = chain.astype(np.float32)
    for _ in range(n_refine):
        refined = _refine_once(pts, chain_f, u, half, sigma, poly_degree)
        if refined is None:
            break
        pts = refined
    p, t, _, coords = _cuts(pts, u, sigma, poly_degree)
    widths = ndimage.map_coordinates(chain_f, coords, order=1, cval=0.0).sum(axis=1)
    tilt = -np.degrees(np.arctan2(t[:, 0], t[:, 1]))
    arc = np.arange(p.shape[0], dtype=np.float64)
    level_pos = np.asarray(fraction_to_level_position(arc / max(arc[-1], 1.0), level_weights))
    return Centreline(
        ys=p[:, 1].copy(), xs=p[:, 0].copy(), tilt_deg=tilt, widths=widths, level_pos=level_pos,
        smoothing_px=float(sigma), n_components=int(info["n_components"]),
        n_dropped=int(info["n_dropped"]), image_shape=(int(m.shape[0]), int(m.shape[1])),
        chain_rebuilt=bool(info["rebuilt"]),
    )


def _smooth_polyline(
    pts: np.ndarray, sigma: float, degree: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a polyline at unit arc length, smooth it, and return points and unit tangents."""
    seglen = np.hypot(*np.diff(pts, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seglen)])
    s = np.arange(0.0, arc[-1] + 1e-9, 1.0)
    if s[-1] < arc[-1] - 0.5:
        s = np.append(s, arc[-1])
    x = np.interp(s, arc, pts[:, 0])
    y = np.interp(s, arc, pts[:, 1])
    xs, dx = _local_poly(x, sigma, degree)
    ys, dy = _local_poly(y, sigma, degree)
    p = np.stack([xs, ys], axis=1)
    d = np.stack([dx, dy], axis=1)
    norm = np.hypot(d[:, 0], d[:, 1])
    norm[norm == 0] = 1.0
    return p, d / norm[:, None]
