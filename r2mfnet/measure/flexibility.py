"""Flexibility of each coronal curve from the two side-bending views, and a coarse curve type.

Matching a coronal curve in a bending view
    Views are matched by **level position** (see :mod:`r2mfnet.measure.levels`), not by image
    rows, because the spine moves between radiographs. The matching bending curve is the one
    with the **same convex side** whose level range overlaps the coronal curve's by the largest
    amount (at least ``min_overlap`` of the coronal curve's range). Its Cobb angle is the
    **residual** angle. If there is none, the curve has straightened below the detection
    threshold or reversed, and the residual is the signed tilt difference of the bending view
    measured between the coronal curve's end levels (the clinical habit of measuring the bending
    Cobb between the same end vertebrae); negative means overcorrected.
Which bending view
    The one that straightens the curve, i.e. the **smaller residual** of the two (normally the
    view bending towards the curve's convex side). Using the smaller residual, rather than a
    side rule, needs no knowledge of the radiographs' left/right markers.
Flexibility
    ``(coronal - residual) / coronal`` as a fraction (0.6 = 60 % correction; > 1 overcorrected).
    ``structural`` marks a residual of at least 25 degrees (Lenke's criterion).
Curve type (approximate)
    Counted from the coronal curves of at least 10 degrees: none / single (C) / double (S) /
    triple, with convex side (image side) and approximate apex level. This is a coarse
    description for a report, **not** a Lenke or King classification.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from r2mfnet.measure.cobb import CobbResult, Curve

BENDING_VIEWS: tuple[str, str] = ("left_bending", "right_bending")
STRUCTURAL_RESIDUAL_DEG = 25.0
"""Lenke et al. (2001): a curve whose bending residual is >= 25 degrees is structural."""
SIGNIFICANT_CURVE_DEG = 10.0
"""Curves below 10 degrees are not scoliosis by the usual definition; ignored in the label."""


@dataclass(frozen=True)
class CurveFlexibility:
    """One coronal curve and how much it corrects on bending.

    ``residual_deg[view]`` is ``None`` for a missing view; ``matched[view]`` the matching bending
    curve (``None`` when it vanished and the same-level residual was used).
    """

    curve: Curve
    coronal_angle: float
    residual_deg: dict[str, float | None]
    matched: dict[str, Curve | None]
    best_view: str | None
    residual_angle: float | None
    flexibility: float | None
    structural: bool | None

    def to_dict(self) -> dict:
        return {
            "region": self.curve.region,
            "levels": f"{self.curve.upper_level}-{self.curve.lower_level}",
            "apex_level": self.curve.apex_level,
            "side": self.curve.side,
            "coronal_angle_deg": round(self.coronal_angle, 2),
            "residual_deg": {
                k: (None if v is None else round(v, 2)) for k, v in self.residual_deg.items()
            },
            "best_view": self.best_view,
            "flexibility": None if self.flexibility is None else round(self.flexibility, 3),
            "structural_approx": self.structural,
        }


@dataclass(frozen=True)
class FlexibilityResult:
    """Flexibility of every coronal curve and the approximate curve-type label."""

    curves: list[CurveFlexibility]
    curve_type_approx: str
    note: str = field(
        default="approximate: levels from masks are estimated; the curve type is a coarse "
        "description, not a Lenke classification"
    )

    def to_dict(self) -> dict:
        return {
            "curves": [c.to_dict() for c in self.curves],
            "curve_type_approx": self.curve_type_approx,
            "note": self.note,
        }


def _overlap(a: Curve, b: Curve) -> float:
    return max(0.0, min(a.lower_pos, b.lower_pos) - max(a.upper_pos, b.upper_pos))


def residual_in_view(
    curve: Curve, bending: CobbResult, min_overlap: float = 0.3
) -> tuple[float, Curve | None]:
    """Residual angle of a coronal ``curve`` in one bending view, and the matched curve if any.

    See the module docstring for the rule.
    """
    span = max(curve.lower_pos - curve.upper_pos, 1e-6)
    same_side = [b for b in bending.curves if b.side == curve.side]
    best = max(same_side, key=lambda b: _overlap(curve, b), default=None)
    if best is not None and _overlap(curve, best) >= min_overlap * span:
        return best.angle_deg, best
    sign = 1.0 if curve.upper_tilt_deg >= curve.lower_tilt_deg else -1.0
    diff = bending.tilt_at_level(curve.upper_pos) - bending.tilt_at_level(curve.lower_pos)
    return sign * diff, None


def curve_type_label(coronal: CobbResult) -> str:
    """Coarse, approximate curve type from the coronal curves of at least 10 degrees."""
    sig = [c for c in coronal.curves if c.angle_deg >= SIGNIFICANT_CURVE_DEG]
    if not sig:
        return f"no curve of {SIGNIFICANT_CURVE_DEG:.0f} deg or more (approximate)"
    parts = [
        f"{c.region} {c.angle_deg:.0f} deg convex {c.side} (image), apex ~{c.apex_level}"
        for c in sig
    ]
    kind = {1: "single curve (C-shaped)", 2: "double curve (S-shaped)"}.get(
        len(sig), f"{'triple' if len(sig) == 3 else str(len(sig))} curve pattern"
    )
    return f"{kind}: " + "; ".join(parts) + " (approximate)"


def curve_flexibility(
    coronal: CobbResult,
    left_bending: CobbResult | None = None,
    right_bending: CobbResult | None = None,
    min_overlap: float = 0.3,
) -> FlexibilityResult:
    """Flexibility of every coronal curve, from whichever bending views are given."""
    views = {"left_bending": left_bending, "right_bending": right_bending}
    out = []
    for curve in coronal.curves:
        residual: dict[str, float | None] = {}
        matched: dict[str, Curve | None] = {}
        for name, res in views.items():
            if res is None:
                residual[name], matched[name] = None, None
            else:
                residual[name], matched[name] = residual_in_view(curve, res, min_overlap)
        given = {k: v for k, v in residual.items() if v is not None}
        best = min(given, key=given.get) if given else None  # type: ignore[arg-type]
        r = given[best] if best is not None else None
        flex = None
        if r is not None and curve.angle_deg > 0:
            flex = (curve.angle_deg - r) / curve.angle_deg
        out.append(
            CurveFlexibility(
                curve=curve,
                coronal_angle=curve.angle_deg,
                residual_deg=residual,
                matched=matched,
                best_view=best,
                residual_angle=r,
                flexibility=flex,
                structural=None if r is None else bool(r >= STRUCTURAL_RESIDUAL_DEG),
            )
        )
    return FlexibilityResult(curves=out, curve_type_approx=curve_type_label(coronal))


def flexibility_from_views(results: Mapping[str, CobbResult | None]) -> FlexibilityResult | None:
    """:func:`curve_flexibility` from a ``{view: CobbResult}`` mapping; ``None`` without coronal."""
    coronal = results.get("coronal")
    if coronal is None:
        return None
    return curve_flexibility(coronal, results.get("left_bending"), results.get("right_bending"))
