"""Cobb angles of every curve of a spine, from a mask's centreline or from vertebra landmarks.

Curves
    The Cobb angle of a curve is the angle between the end plates of its two **end vertebrae**,
    the most tilted vertebrae at either end of the curve. Along the spine the tilt therefore
    runs between alternating extrema, and each pair of consecutive extrema bounds one curve whose
    Cobb angle is their tilt difference. Extrema are found by hysteresis (a "zigzag"): a turn of
    the tilt counts only if the tilt moves back by at least ``min_curve_deg`` (default 5 deg),
    which ignores the wobble of a noisy mask and matches the clinical habit of not calling curves
    under about 5-10 deg. The first and last extrema may be the ends of the spine.
Main angle
    The largest curve. With no curve above the threshold the main angle is the total tilt range
    (below ``min_curve_deg``) and ``curves`` is empty. ``CobbResult.tilt_range`` is the AASCE /
    SpineWeb16 definition instead (largest angle between any two levels, possibly spanning
    curves); compare with ``angles.csv`` or ``cobb_from_landmarks`` using that one.
Apex and side
    The apex is the centreline point (or vertebra centre) farthest from the chord joining the
    curve's end points; the curve is convex towards the side the apex lies on. ``side`` is the
    **image** side (``"left"``/``"right"`` of the picture), not the patient's, since image
    orientation markers are not read.
Regions (AASCE / SRS, by apex level position ``p``, see :mod:`r2mfnet.measure.levels`)
    proximal thoracic (PT) ``p < 5`` (apex T1-T5), main thoracic (MT) ``5 <= p < 11`` (apex T6
    to the T11/T12 disc), thoracolumbar/lumbar (TL/L) ``p >= 11`` (apex T12-L5). Each regional
    angle is the largest curve whose apex is in the region, 0.0 when there is none.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from r2mfnet.data.views import LEVELS
from r2mfnet.errors import MeasurementError
from r2mfnet.measure.centreline import Centreline, extract_centreline
from r2mfnet.measure.landmarks import vertebra_tilts_deg
from r2mfnet.measure.levels import level_name

PT_MT_BOUNDARY = 5.0
"""Level position of the top of T6: apices above it are proximal thoracic."""
MT_TL_BOUNDARY = 11.0
"""Level position of the T11/T12 disc: apices at or below it are thoracolumbar/lumbar."""


@dataclass(frozen=True)
class Curve:
    """One curve between two end vertebrae (``upper`` above ``lower`` in the image).

    ``*_y`` rows and ``*_x`` centreline x in the image; ``*_pos`` level positions (0..17, see
    :mod:`r2mfnet.measure.levels`; approximate for masks) and ``*_level`` their names;
    ``upper_tilt_deg``/``lower_tilt_deg`` the end-plate tilts whose difference is ``angle_deg``;
    ``side`` the image side of the convexity; ``region`` ``"PT"``, ``"MT"`` or ``"TL"``.
    """

    upper_y: float
    lower_y: float
    apex_y: float
    angle_deg: float
    upper_level: str
    lower_level: str
    apex_level: str
    side: str
    upper_pos: float
    lower_pos: float
    apex_pos: float
    upper_x: float
    lower_x: float
    apex_x: float
    upper_tilt_deg: float
    lower_tilt_deg: float
    region: str

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class CobbResult:
    """All curves of one spine, the main Cobb angle and the AASCE regional angles.

    ``profile_pos`` / ``profile_tilt_deg`` hold the tilt profile the curves were found on
    (level positions and tilts), so that another view can be compared at the same levels.
    ``source`` is ``"mask"`` (centreline method), ``"mask_vertebrae"`` (end-plate method,
    :mod:`r2mfnet.measure.vertebrae`) or ``"landmarks"``.
    """

    curves: list[Curve]
    main_angle: float
    pt_angle: float
    mt_angle: float
    tl_angle: float
    source: str
    profile_pos: np.ndarray = field(repr=False)
    profile_tilt_deg: np.ndarray = field(repr=False)
    flags: tuple[str, ...] = ()
    """Why the result may be wrong (anatomical sanity, :mod:`r2mfnet.measure.sanity`); empty
    when nothing looked implausible."""

    @property
    def tilt_range(self) -> float:
        """Largest angle between any two levels: max - min of the tilt profile (degrees).

        This is the AASCE / SpineWeb16 ``angles.csv`` "main" definition, equal to
        :func:`~r2mfnet.measure.landmarks.cobb_from_landmarks` for landmarks. It equals
        ``main_angle`` whenever the most and least tilted levels bound one curve; it is larger
        when they do not (e.g. a bending view whose tilts zigzag), because it can span curves.
        """
        t = self.profile_tilt_deg
        return float(t.max() - t.min()) if t.size else 0.0

    @property
    def main_curve(self) -> Curve | None:
        return max(self.curves, key=lambda c: c.angle_deg) if self.curves else None

    def tilt_at_level(self, position: float) -> float:
        """Tilt of the profile at level position ``position`` (linear interpolation)."""
        return float(np.interp(position, self.profile_pos, self.profile_tilt_deg))

    def to_dict(self) -> dict:
        """JSON-ready summary (angles rounded to 0.01 degree)."""
        return {
            "source": self.source,
            "main_angle_deg": round(self.main_angle, 2),
            "tilt_range_deg": round(self.tilt_range, 2),
            "pt_angle_deg": round(self.pt_angle, 2),
            "mt_angle_deg": round(self.mt_angle, 2),
            "tl_angle_deg": round(self.tl_angle, 2),
            "curves": [c.to_dict() for c in self.curves],
            "flags": list(self.flags),
            "levels_note": (
                "levels are approximate (proportional to typical vertebra heights)"
                if self.source.startswith("mask")
                else "levels from landmarks"
            ),
        }


# ----------------------------------------------------------------------------- curve finding
def tilt_extrema(tilts: np.ndarray, min_curve_deg: float = 5.0) -> list[int]:
    """Indices of alternating tilt extrema whose consecutive differences are >= ``min_curve_deg``.

    Hysteresis scan: until the first turn both the running maximum and minimum are tracked, so the
    first extremum is the most tilted point before the first rise or fall, not simply index 0.
    Fewer than two indices means no curve.
    """
    t = np.asarray(tilts, dtype=np.float64)
    if t.size < 2:
        return []
    pivots: list[int] = []
    i_max = i_min = 0
    direction = 0  # +1 rising (tracking a maximum), -1 falling (tracking a minimum)
    ext = 0
    for i in range(1, t.size):
        v = t[i]
        if direction == 0:
            if v > t[i_max]:
                i_max = i
            if v < t[i_min]:
                i_min = i
            if v - t[i_min] >= min_curve_deg:
                pivots.append(i_min)
                direction, ext = 1, i
            elif t[i_max] - v >= min_curve_deg:
                pivots.append(i_max)
                direction, ext = -1, i
        elif direction == 1:
            if v > t[ext]:
                ext = i
            elif t[ext] - v >= min_curve_deg:
                pivots.append(ext)
                direction, ext = -1, i
        else:
            if v < t[ext]:
                ext = i
            elif v - t[ext] >= min_curve_deg:
                pivots.append(ext)
                direction, ext = 1, i
    if direction != 0:
        pivots.append(ext)
    return pivots


def region_of(apex_pos: float) -> str:
    """``"PT"``, ``"MT"`` or ``"TL"`` for an apex at level position ``apex_pos``."""
    if apex_pos < PT_MT_BOUNDARY:
        return "PT"
    if apex_pos < MT_TL_BOUNDARY:
        return "MT"
    return "TL"


def _curves_from_profile(
    ys: np.ndarray,
    xs: np.ndarray,
    tilts: np.ndarray,
    pos: np.ndarray,
    min_curve_deg: float,
    names: Sequence[str] | None = None,
) -> list[Curve]:
    """Curves between consecutive tilt extrema of a sampled spine (top to bottom)."""
    piv = tilt_extrema(tilts, min_curve_deg)
    curves = []
    for a, b in zip(piv[:-1], piv[1:]):
        seg = slice(a, b + 1)
        p0 = np.array([xs[a], ys[a]])
        d = np.array([xs[b], ys[b]]) - p0
        norm = float(np.hypot(*d)) or 1.0
        # Distance of each point from the chord between the end points (apex = farthest).
        sd = ((ys[seg] - p0[1]) * d[0] - (xs[seg] - p0[0]) * d[1]) / norm
        k = int(np.argmax(np.abs(sd)))
        apex = a + k
        # x of the chord at the apex row: apex right of it means convex to the image right.
        chord_x = p0[0] + (d[0] / d[1] * (ys[apex] - p0[1]) if d[1] else 0.0)
        side = "right" if xs[apex] > chord_x else "left"
        nm = (lambda i: names[i]) if names is not None else (lambda i: level_name(pos[i]))
        curves.append(
            Curve(
                upper_y=float(ys[a]),
                lower_y=float(ys[b]),
                apex_y=float(ys[apex]),
                angle_deg=float(abs(tilts[a] - tilts[b])),
                upper_level=nm(a),
                lower_level=nm(b),
                apex_level=nm(apex),
                side=side,
                upper_pos=float(pos[a]),
                lower_pos=float(pos[b]),
                apex_pos=float(pos[apex]),
                upper_x=float(xs[a]),
                lower_x=float(xs[b]),
                apex_x=float(xs[apex]),
                upper_tilt_deg=float(tilts[a]),
                lower_tilt_deg=float(tilts[b]),
                region=region_of(float(pos[apex])),
            )
        )
    return curves


def _result(curves: list[Curve], tilts: np.ndarray, pos: np.ndarray, source: str) -> CobbResult:
    def best(region: str) -> float:
        return max((c.angle_deg for c in curves if c.region == region), default=0.0)

    main = max((c.angle_deg for c in curves), default=float(np.ptp(tilts)) if tilts.size else 0.0)
    return CobbResult(
        curves=curves,
        main_angle=float(main),
        pt_angle=best("PT"),
        mt_angle=best("MT"),
        tl_angle=best("TL"),
        source=source,
        profile_pos=np.asarray(pos, dtype=np.float64),
        profile_tilt_deg=np.asarray(tilts, dtype=np.float64),
    )


# ----------------------------------------------------------------------------- public API
MAX_CENTRELINE_TILT_DEG = 80.0
"""A centreline tilted further than this from vertical runs sideways or back on itself (a mask
that is not a spine, or a badly broken one): its tilt difference would be a meaningless number."""


def cobb_from_centreline(centreline: Centreline, min_curve_deg: float = 5.0) -> CobbResult:
    """Curves and Cobb angles from a mask's centreline (levels approximate).

    Raises :class:`MeasurementError` when the centreline turns more than
    :data:`MAX_CENTRELINE_TILT_DEG` from vertical anywhere.
    """
    c = centreline
    worst = float(np.max(np.abs(c.tilt_deg))) if c.tilt_deg.size else 0.0
    if worst > MAX_CENTRELINE_TILT_DEG:
        raise MeasurementError(
            f"the spine's centreline turns {worst:.0f} degrees from vertical (more than "
            f"{MAX_CENTRELINE_TILT_DEG:.0f}): it runs sideways or back on itself, so the mask "
            "does not outline a measurable spine")
    curves = _curves_from_profile(c.ys, c.xs, c.tilt_deg, c.level_pos, min_curve_deg)
    return _result(curves, c.tilt_deg, c.level_pos, "mask")


def cobb_from_mask(
    mask: np.ndarray, min_curve_deg: float = 5.0, **centreline_kwargs
) -> tuple[Centreline, CobbResult]:
    """Centreline and Cobb angles of a binary spine mask (``MeasurementError`` if unmeasurable).

    ``centreline_kwargs`` go to :func:`r2mfnet.measure.centreline.extract_centreline`.
    """
    cl = extract_centreline(mask, **centreline_kwargs)
    return cl, cobb_from_centreline(cl, min_curve_deg)


def cobb_curves_from_landmarks(
    corners: np.ndarray, min_curve_deg: float = 5.0, levels: Sequence[str] | None = None
) -> CobbResult:
    """The reference: the same curve finding on the tilts of individually landmarked vertebrae.

    ``corners`` is ``(N, 4, 2)`` (TL, TR, BL, BR per vertebra, top to bottom; N = 17 for T1..L5).
    Each vertebra is one sample at its centre, with its mid-line tilt
    (:func:`~r2mfnet.measure.landmarks.vertebra_tilts_deg`) and level position ``i + 0.5``, so
    end and apex levels are exact. For 17 vertebrae the main angle equals
    :func:`~r2mfnet.measure.landmarks.cobb_from_landmarks` whenever the spine's most and least
    tilted vertebrae bound one curve (always for C and S curves).
    """
    tilts = vertebra_tilts_deg(corners)  # validates the shape
    c = np.asarray(corners, dtype=np.float64)
    centre = c.mean(axis=1)
    n = c.shape[0]
    if levels is None:
        if n != len(LEVELS):
            raise MeasurementError(
                f"landmarks of {n} vertebrae: pass their level names (default is T1..L5, 17)"
            )
        levels = LEVELS
    if len(levels) != n:
        raise MeasurementError(f"{len(levels)} level names for {n} vertebrae")
    if np.any(np.diff(centre[:, 1]) <= 0):
        raise MeasurementError("landmark vertebrae must be ordered top to bottom")
    # Level position = vertebra centre; named levels of T1..L5 keep their place on the spine.
    if all(name in LEVELS for name in levels):
        pos = np.array([LEVELS.index(name) for name in levels], dtype=np.float64) + 0.5
    else:
        pos = np.arange(n, dtype=np.float64) + 0.5
    curves = _curves_from_profile(centre[:, 1], centre[:, 0], tilts, pos, min_curve_deg, levels)
    return _result(curves, tilts, pos, "landmarks")
