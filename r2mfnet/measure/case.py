"""Measure all views of one case: Cobb angles per view, flexibility, report picture.

A view that cannot be measured (empty or broken mask) does not stop the others: its
:class:`ViewMeasurement` carries the error message instead of numbers, and flexibility is
computed from the views that were measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from r2mfnet.data.views import VIEWS
from r2mfnet.errors import MeasurementError
from r2mfnet.measure.centreline import Centreline
from r2mfnet.measure.cobb import CobbResult, cobb_from_mask
from r2mfnet.measure.annotate import draw_measurement, side_by_side
from r2mfnet.measure.flexibility import (
    SIGNIFICANT_CURVE_DEG,
    FlexibilityResult,
    flexibility_from_views,
)


@dataclass(frozen=True)
class ViewMeasurement:
    """Result for one view: centreline and Cobb angles, or the reason there are none."""

    view: str
    centreline: Centreline | None
    cobb: CobbResult | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None or self.cobb is None or self.centreline is None:
            return {"view": self.view, "measured": False, "error": self.error}
        cl = self.centreline
        return {
            "view": self.view,
            "measured": True,
            **self.cobb.to_dict(),
            "centreline": {
                "top_y": round(cl.top, 1),
                "bottom_y": round(cl.bottom, 1),
                "parts_kept": cl.n_components,
                "parts_dropped": cl.n_dropped,
                "chain_rebuilt": cl.chain_rebuilt,
                "smoothing_px": round(cl.smoothing_px, 2),
            },
        }


@dataclass(frozen=True)
class CaseMeasurement:
    """All views of one case and the flexibility of the coronal curves."""

    case_id: str
    views: dict[str, ViewMeasurement]
    flexibility: FlexibilityResult | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the content of ``measurements.json``)."""
        return {
            "case_id": self.case_id,
            "views": {v: m.to_dict() for v, m in self.views.items()},
            "flexibility": None if self.flexibility is None else self.flexibility.to_dict(),
        }


METHODS = ("centreline", "vertebrae")
"""Tilt methods: perpendicular to the centreline, or each vertebra's end plates (see
:mod:`r2mfnet.measure.vertebrae`, far closer to expert angles on masks with separate vertebrae)."""


def method_kwargs(method: str, merged_split: str = "centreline") -> dict[str, Any]:
    """The keywords of :func:`measure_view` for the commands' measurement settings.

    ``merged_split`` (:func:`~r2mfnet.measure.vertebrae.vertebra_tilts`) is checked whatever
    the method (a bad value is a one-line :class:`~r2mfnet.errors.ConfigError` naming the key)
    and goes to the end-plate method only: the centreline method has no vertebrae to split.
    """
    from r2mfnet.measure.vertebrae import check_merged_split

    check_merged_split(merged_split)
    return {"merged_split": merged_split} if method == "vertebrae" else {}


def measure_view(view: str, mask: np.ndarray, method: str = "centreline",
                 **kwargs: Any) -> ViewMeasurement:
    """Measure one mask; a :class:`MeasurementError` becomes the view's ``error``.

    ``method`` is ``"centreline"`` (:func:`~r2mfnet.measure.cobb.cobb_from_mask`) or
    ``"vertebrae"`` (:func:`~r2mfnet.measure.vertebrae.cobb_from_mask_vertebrae`).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    try:
        if method == "vertebrae":
            from r2mfnet.measure.vertebrae import cobb_from_mask_vertebrae

            cl, cobb = cobb_from_mask_vertebrae(mask, **kwargs)
        else:
            cl, cobb = cobb_from_mask(mask, **kwargs)
    except MeasurementError as exc:
        return ViewMeasurement(view, None, None, str(exc))
    return ViewMeasurement(view, cl, cobb, None)


def view_refine(refine_views: Mapping[str, Any] | None, view: str, method: str) -> dict[str, Any]:
    """``{"refine": ...}`` for one view's end-plate measurement when one is given, else ``{}``."""
    if method != "vertebrae" or not refine_views or view not in refine_views:
        return {}
    return {"refine": refine_views[view]}


def measure_case(
    masks: Mapping[str, np.ndarray], case_id: str = "", method: str = "centreline",
    refine_views: Mapping[str, Any] | None = None, **kwargs: Any
) -> CaseMeasurement:
    """Measure every view in ``masks`` (``{view: bool mask}``), then flexibility if possible.

    Views are kept in ``VIEWS`` order (others after, as given). ``method`` and ``kwargs`` go to
    :func:`measure_view`; ``refine_views`` (``{view: refine}``, the end-plate method only) gives
    a view's :func:`~r2mfnet.measure.vertebrae.cobb_from_mask_vertebrae` its ``refine``.
    """
    order = [v for v in VIEWS if v in masks] + [v for v in masks if v not in VIEWS]
    views = {v: measure_view(v, masks[v], method=method, **kwargs, **view_refine(refine_views, v, method))
             for v in order}
    flex = flexibility_from_views({v: m.cobb for v, m in views.items()})
    return CaseMeasurement(case_id, views, flex)


def case_picture(
    case: CaseMeasurement,
    images: Mapping[str, np.ndarray | None],
    masks: Mapping[str, np.ndarray],
    title: str | None = None,
    subtitle: str | None = None,
) -> np.ndarray:
    """The report picture: every view drawn by :func:`draw_measurement`, side by side.

    The default title names the case and, when available, the coronal main angle and the
    flexibility of its main curve (only for a curve of at least 10 degrees: the flexibility of a
    smaller curve is dominated by measurement noise); ``subtitle`` is appended to it (e.g. where
    the masks came from).
    """
    pictures = {}
    for v, m in case.views.items():
        pictures[v] = draw_measurement(
            images.get(v), masks.get(v), m.centreline, m.cobb, label=None, error=m.error
        )
    if title is None:
        title = f"case {case.case_id}" if case.case_id else "case"
        cor = case.views.get("coronal")
        if cor is not None and cor.cobb is not None:
            title += f" | coronal main Cobb {cor.cobb.main_angle:.1f} deg"
        if case.flexibility is not None and case.flexibility.curves:
            main = max(case.flexibility.curves, key=lambda c: c.coronal_angle)
            if main.flexibility is not None and main.coronal_angle >= SIGNIFICANT_CURVE_DEG:
                title += f" | flexibility {100 * main.flexibility:.0f}% ({main.best_view})"
    if subtitle:
        title += f" | {subtitle}"
    return side_by_side(pictures, title=title)
