"""Which results of a case a reviewer should look at first: the review page's flags.

Why
    A radiologist reviewing a hundred patients cannot check every angle; the review page
    (:mod:`r2mfnet.measure.review_page`) puts the doubtful cases first. A case is doubtful when
    one of its views could not be measured, when the anatomical sanity rule
    (:mod:`r2mfnet.measure.anatomy`) changed or questioned the measurement, or when a number is
    outside what a scoliosis radiograph gives. The rules read only a case's
    ``measurements.json`` content (schema ``r2mfnet-measurements/1``), so they apply to any
    model's masks and to masks given by hand alike.
"""
from __future__ import annotations

from typing import Any, Mapping

IMPLAUSIBLE_MAIN_DEG = 90.0
"""A main Cobb angle above this is not a scoliosis measurement (SpineWeb16's largest is about
80 deg): a mask that is not a spine, or a measurement gone wrong."""
FLEXIBILITY_RANGE = (-0.5, 1.1)
"""Flexibility is ``(coronal - bending) / coronal``: 1 straightens fully, 0 not at all; far
outside this range the bending view's curve was not matched to the coronal one."""


def view_flags(view: str, entry: Mapping[str, Any]) -> list[str]:
    """Flags of one view's entry in ``measurements.json``."""
    if not entry.get("measured"):
        return [f"{view}: not measured ({entry.get('error') or 'no reason given'})"]
    flags = [f"{view}: {f}" for f in entry.get("flags", [])]
    main = entry.get("main_angle_deg")
    if isinstance(main, (int, float)) and main > IMPLAUSIBLE_MAIN_DEG:
        flags.append(f"{view}: main angle {main:.1f} deg is implausible (> {IMPLAUSIBLE_MAIN_DEG:.0f})")
    level_error = (entry.get("vertebra_level") or {}).get("error")
    if level_error:
        flags.append(f"{view}: vertebra levels not measured ({level_error})")
    return flags


def case_flags(case: Mapping[str, Any]) -> list[str]:
    """Every flag of one case (its ``measurements.json`` dict), views in their order."""
    flags = [f for view, entry in case.get("views", {}).items() for f in view_flags(view, entry)]
    for curve in (case.get("flexibility") or {}).get("curves", []):
        f = curve.get("flexibility")
        if f is not None and not FLEXIBILITY_RANGE[0] <= f <= FLEXIBILITY_RANGE[1]:
            flags.append(f"flexibility {100 * f:.0f}% of the {curve.get('levels')} curve is implausible")
    return flags
