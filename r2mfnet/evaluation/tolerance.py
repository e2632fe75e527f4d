"""The boundary-F1 tolerance of each case: fixed pixels, millimetres, or a fraction of the height.

A fixed pixel tolerance means different things at different resolutions: 2 px is a tenth of a
vertebra at 512 rows but 1/50 of one on a 3000-row radiograph, where decent masks then score a
boundary F1 near 0.1. The default therefore scales with the anatomy (docs/metrics.md, "Boundary
tolerance"):

1. ``px`` set (config ``eval.tau``): that many pixels for every case (the older behaviour);
2. else, when the case's pixel spacing is known and ``mm`` is set (``eval.tau_mm``, default
   2.5 mm, about an eighth of a vertebral body's height): ``mm`` / spacing pixels;
3. else ``height_fraction`` x image height (``eval.tau_height_fraction``, default 0.5 %: an eighth
   of the median vertebra height measured on the SpineWeb16 radiographs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from r2mfnet.errors import ConfigError
from r2mfnet.evaluation._checks import check_spacing

DEFAULT_TAU_MM = 2.5
"""Tolerance in mm when the pixel spacing is known (an eighth of a ~20 mm vertebral body)."""

DEFAULT_TAU_HEIGHT_FRACTION = 0.005
"""Tolerance as a fraction of the image height when the spacing is unknown (0.5 %)."""


def _number(value: float | None, key: str, allow_none: bool, allow_zero: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ConfigError(f"{key} must be a number, got null")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{key} must be a finite number {bound}{' or null' if allow_none else ''}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class BoundaryTolerance:
    """How the boundary-F1 tolerance of a case is chosen; field names follow the ``eval.*`` keys.

    ``px``: fixed tolerance in pixels (``eval.tau``; ``None`` = scale with the image).
    ``mm``: tolerance in mm for cases with a pixel spacing (``eval.tau_mm``; ``None`` = ignore the
    spacing, e.g. to score a set where only some images have one on one scale).
    ``height_fraction``: fraction of the image height otherwise (``eval.tau_height_fraction``).
    Invalid values raise ``ConfigError`` naming the key.
    """

    px: float | None = None
    mm: float | None = DEFAULT_TAU_MM
    height_fraction: float = DEFAULT_TAU_HEIGHT_FRACTION

    def __post_init__(self) -> None:
        _number(self.px, "eval.tau", allow_none=True, allow_zero=True)
        _number(self.mm, "eval.tau_mm", allow_none=True, allow_zero=False)
        _number(self.height_fraction, "eval.tau_height_fraction", allow_none=False, allow_zero=False)
        if self.height_fraction >= 1:
            raise ConfigError(
                f"eval.tau_height_fraction is a fraction of the image height (0.005 = 0.5 %), got {self.height_fraction}"
            )

    def resolve(
        self, shape: Sequence[int], spacing_mm: float | Sequence[float] | None = None
    ) -> tuple[float, str]:
        """``(tolerance in pixels, rule)`` for one image of ``shape`` (rows first).

        ``rule`` is the text printed with the result: ``"2 px"``, ``"2.5 mm"`` or
        ``"0.5 % of height"``. With anisotropic pixels the mm tolerance is divided by the
        geometric mean of the spacings (radiographs have square pixels in practice).
        Raises ``ValueError`` for an invalid spacing.
        """
        if self.px is not None:
            return float(self.px), f"{self.px:g} px"
        if self.mm is not None and spacing_mm is not None:
            sp = check_spacing(spacing_mm, len(shape))
            mean_spacing = math.prod(sp) ** (1.0 / len(sp))
            return self.mm / mean_spacing, f"{self.mm:g} mm"
        return self.height_fraction * float(shape[0]), f"{100 * self.height_fraction:g} % of height"
