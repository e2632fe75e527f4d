"""Clinical measurements from spine masks: centreline, Cobb angles, flexibility, pictures.

``cobb_from_mask(mask)`` gives the centreline and every curve's Cobb angle (main, PT, MT, TL/L);
``cobb_curves_from_landmarks(corners)`` is the same measurement from vertebra landmarks (the
reference); ``measure_case({view: mask})`` measures the three views and the flexibility of each
curve; ``draw_measurement`` / ``side_by_side`` / ``case_picture`` make the report picture.
``cobb_from_mask_vertebrae`` measures on each vertebra's end plates instead of the centreline
(``method="vertebrae"`` in ``measure_case``); ``aasce_angles_*`` give the three SpineWeb16 /
AASCE ``angles.csv`` angles. Evaluation: :mod:`r2mfnet.measure.angle_stats`, ``docs/clinical.md``.
Definitions and conventions: ``docs/measure.md``.
"""
from __future__ import annotations

from r2mfnet.measure.case import (
    CaseMeasurement,
    ViewMeasurement,
    case_picture,
    measure_case,
    measure_view,
)
from r2mfnet.measure.centreline import Centreline, extract_centreline, select_chain
from r2mfnet.measure.cobb import (
    CobbResult,
    Curve,
    cobb_curves_from_landmarks,
    cobb_from_centreline,
    cobb_from_mask,
    tilt_extrema,
)
from r2mfnet.measure.annotate import draw_measurement, side_by_side
from r2mfnet.measure.flexibility import (
    CurveFlexibility,
    FlexibilityResult,
    curve_flexibility,
    flexibility_from_views,
)
from r2mfnet.measure.landmarks import cobb_from_landmarks, vertebra_tilts_deg
from r2mfnet.measure.aasce import aasce_angles_from_landmarks, aasce_angles_from_measurement
from r2mfnet.measure.vertebrae import cobb_from_mask_vertebrae, vertebra_tilts

__all__ = [
    "aasce_angles_from_landmarks",
    "aasce_angles_from_measurement",
    "cobb_from_mask_vertebrae",
    "vertebra_tilts",
    "CaseMeasurement",
    "Centreline",
    "CobbResult",
    "Curve",
    "CurveFlexibility",
    "FlexibilityResult",
    "ViewMeasurement",
    "case_picture",
    "cobb_curves_from_landmarks",
    "cobb_from_centreline",
    "cobb_from_landmarks",
    "cobb_from_mask",
    "curve_flexibility",
    "draw_measurement",
    "extract_centreline",
    "flexibility_from_views",
    "measure_case",
    "measure_view",
    "select_chain",
    "side_by_side",
    "tilt_extrema",
    "vertebra_tilts_deg",
]
