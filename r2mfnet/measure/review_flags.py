"""Which results of a case a reviewer should look at first: the review page's flags.

Why
    A radiologist reviewing a hundred patients cannot check every angle; the review page
    (:mod:`r2mfnet.measure.review_page`) puts the doubtful cases first. A case is doubtful when
    one of its views could not be measured, when its spine mask was broken and measured on a
    rebuilt chain of parts (:func:`~r2mfnet.measure.centreline.select_chain`), when the
    anatomical sanity rule (:mod:`r2mfnet.measure.sanity`) changed or questioned the measurement, or when a number is
    outside what a scoliosis radiograph gives, or when the two halves of flip TTA (the two passes
    TTA averages: the letterboxed image and its mirror image, each thresholded alone) give main angles more than
    :data:`TTA_DISAGREEMENT_DEG` apart: the prediction is unstable there. The rules read only a
    case's ``measurements.json`` content (schema ``r2mfnet-measurements/1``), so they apply to
    any model's masks and to masks given by hand alike; :func:`tta_halves_entry` makes the
    ``tta_halves`` entry the last rule reads.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

IMPLAUSIBLE_MAIN_DEG = 90.0
"""A main Cobb angle above this is not a scoliosis measurement (SpineWeb16's largest is about
80 deg): a mask that is not a spine, or a measurement gone wrong."""
FLEXIBILITY_RANGE = (-0.5, 1.1)
"""Flexibility is ``(coronal - bending) / coronal``: 1 straightens fully, 0 not at all; far
outside this range the bending view's curve was not matched to the coronal one."""
TTA_DISAGREEMENT_DEG = 10.0
"""Main angles of the two flip-TTA halves further apart than this: an unstable prediction
(issue 23's example of an implausible result)."""


def tta_halves_entry(plain: np.ndarray, mirrored: np.ndarray, method: str = "vertebrae",
                     **kwargs: Any) -> dict[str, Any]:
    """``measurements.json``'s ``tta_halves`` of one view: the main angle of each half's mask.

    ``plain`` is the mask predicted from the image alone, ``mirrored`` the one predicted from
    its mirror image and mirrored back; both are measured like the view itself (``method``,
    ``kwargs``: :func:`~r2mfnet.measure.case.measure_view`). A half that cannot be measured has
    ``None`` and its reason.
    """
    from r2mfnet.measure.case import measure_view

    out: dict[str, Any] = {}
    for name, mask in (("plain", plain), ("mirrored", mirrored)):
        vm = measure_view("coronal", np.asarray(mask, dtype=bool), method=method, **kwargs)
        out[f"{name}_main_deg"] = None if vm.cobb is None else round(float(vm.cobb.main_angle), 2)
        if vm.error:
            out[f"{name}_error"] = vm.error
    a, b = out["plain_main_deg"], out["mirrored_main_deg"]
    out["difference_deg"] = None if a is None or b is None else round(abs(a - b), 2)
    return out


def _tta_flag(view: str, halves: Mapping[str, Any] | None) -> list[str]:
    """The flip-TTA rule: halves disagreeing by more than the threshold, or one unmeasurable."""
    if not halves:
        return []
    a, b = halves.get("plain_main_deg"), halves.get("mirrored_main_deg")
    if a is None or b is None:
        which = "plain" if a is None else "mirrored"
        return [f"{view}: the {which} flip-TTA half could not be measured"]
    if abs(a - b) > TTA_DISAGREEMENT_DEG:
        return [f"{view}: main angle {a:.1f} vs {b:.1f} deg between the flip-TTA halves "
                f"(> {TTA_DISAGREEMENT_DEG:.0f} deg apart)"]
    return []


def view_flags(view: str, entry: Mapping[str, Any]) -> list[str]:
    """Flags of one view's entry in ``measurements.json``."""
    if not entry.get("measured"):
        return [f"{view}: not measured ({entry.get('error') or 'no reason given'})"]
    flags = [f"{view}: {f}" for f in entry.get("flags", [])]
    if (entry.get("centreline") or {}).get("chain_rebuilt"):
        flags.append(f"{view}: the spine mask is broken for the usual chain rule; measured on "
                     "the chain rebuilt from its heaviest top-to-bottom path of parts")
    main = entry.get("main_angle_deg")
    if isinstance(main, (int, float)) and main > IMPLAUSIBLE_MAIN_DEG:
        flags.append(f"{view}: main angle {main:.1f} deg is implausible (> {IMPLAUSIBLE_MAIN_DEG:.0f})")
    level_error = (entry.get("vertebra_level") or {}).get("error")
    if level_error:
        flags.append(f"{view}: vertebra levels not measured ({level_error})")
    return flags + _tta_flag(view, entry.get("tta_halves"))


def case_flags(case: Mapping[str, Any]) -> list[str]:
    """Every flag of one case (its ``measurements.json`` dict), views in their order."""
    flags = [f for view, entry in case.get("views", {}).items() for f in view_flags(view, entry)]
    for curve in (case.get("flexibility") or {}).get("curves", []):
        f = curve.get("flexibility")
        if f is not None and not FLEXIBILITY_RANGE[0] <= f <= FLEXIBILITY_RANGE[1]:
            flags.append(f"flexibility {100 * f:.0f}% of the {curve.get('levels')} curve is implausible")
    return flags
