"""Overlap metrics and the per-case accumulator ``SegmentationMetric``.

All functions take binary masks (bool, or numbers that are all 0/1) of the same shape, at the
image's ORIGINAL resolution: metrics computed at the network's letterboxed size would reward
errors hidden by down-sampling.

Empty-mask conventions (tested; see ``docs/metrics.md``)
    =====================  ===========  ====================
    case                   Dice, IoU,   HD95, ASSD
                           BF, vert. F1
    =====================  ===========  ====================
    both masks empty       1.0          0.0
    exactly one empty      0.0          NaN (counted as
                                        ``n_failed`` by
                                        ``summaries.summarize``)
    =====================  ===========  ====================

Both-empty is perfect agreement (a correct "no spine here"), so it scores as perfect; one-empty
has no surface to measure a distance to, so the distance is undefined rather than given an
arbitrary number (an image diagonal would depend on the image size and dominate any mean).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from r2mfnet.errors import DataError
from r2mfnet.evaluation._checks import check_pair, check_spacing
from r2mfnet.evaluation.boundary import (
    Spacing,
    assd,
    boundary,
    boundary_f1,
    boundary_metrics,
    hd95,
)
from r2mfnet.evaluation.columns import BOUNDARY_TAU_PX, BOUNDARY_TOLERANCE, METRIC_NAMES
from r2mfnet.evaluation.summaries import summarize
from r2mfnet.evaluation.tolerance import (
    DEFAULT_TAU_HEIGHT_FRACTION,
    DEFAULT_TAU_MM,
    BoundaryTolerance,
)
from r2mfnet.evaluation.vertebra_f1 import vertebra_f1, vertebra_match

__all__ = [
    "METRIC_NAMES",
    "SegmentationMetric",
    "assd",
    "boundary",
    "boundary_f1",
    "dice",
    "hd95",
    "iou",
    "vertebra_f1",
]


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient ``2|P & G| / (|P| + |G|)``; both empty -> 1.0, one empty -> 0.0."""
    p, g = check_pair(pred, gt)
    total = int(p.sum()) + int(g.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / total


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union (Jaccard) ``|P & G| / |P | G|``; both empty -> 1.0, one -> 0.0."""
    p, g = check_pair(pred, gt)
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(p, g).sum()) / union


class SegmentationMetric:
    """Accumulates one row of metrics per (case, view), in the manner of MONAI's ``DiceMetric``.

    >>> m = SegmentationMetric()                     # BF tolerance: 2.5 mm, else 0.5 % of height
    >>> m.update(pred, gt, case_id="c01", view="coronal", quality="high", spacing_mm=0.2)
    >>> m.rows()[0]["dice"], m.aggregate()["per_view"]["coronal"]["dice"]["mean"]

    Rows hold ``case_id, view, quality``, the metrics of ``METRIC_NAMES`` (``dice, iou,
    boundary_f1, hd95, assd, vertebra_f1``), ``boundary_tau_px`` and ``boundary_tolerance`` (the
    BF tolerance used and its rule), the vertebra counts (``vertebrae_gt`` ... ``vertebrae_missed``),
    ``distance_unit``, then any ``extra`` keyword given to :meth:`update` (e.g. ``split``).
    ``hd95``/``assd`` are in mm when ``spacing_mm`` is given, else in pixels.

    The BF tolerance follows :class:`~r2mfnet.evaluation.tolerance.BoundaryTolerance`: ``tau``
    pixels if given (``SegmentationMetric(tau=2.0)`` is the older fixed 2-px score), else
    ``tau_mm`` for cases with a spacing, else ``tau_height_fraction`` x image height.
    """

    def __init__(
        self,
        tau: float | None = None,
        tau_mm: float | None = DEFAULT_TAU_MM,
        tau_height_fraction: float = DEFAULT_TAU_HEIGHT_FRACTION,
    ):
        self.tolerance = BoundaryTolerance(px=tau, mm=tau_mm, height_fraction=tau_height_fraction)
        self._rows: list[dict[str, Any]] = []

    def update(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        case_id: str,
        view: str,
        quality: str | None = None,
        spacing_mm: Spacing = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Compute the metrics of one prediction, store and return its row.

        Raises ``DataError`` naming the case and view when the masks are not binary 2-D arrays
        of the same shape or the spacing is invalid: a mismatch means the prediction was not
        mapped back to the original resolution, which must not be averaged silently.
        """
        where = f"case '{case_id}' view '{view}'"
        try:
            p, g = check_pair(pred, gt)
            if p.ndim != 2:
                raise ValueError(f"masks must be 2-D (H x W), got {p.ndim}-D")
            check_spacing(spacing_mm, 2)
            tau_px, rule = self.tolerance.resolve(p.shape, spacing_mm)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from exc
        b = boundary_metrics(p, g, tau=tau_px, spacing=spacing_mm)
        counts = vertebra_match(p, g)
        row: dict[str, Any] = {
            "case_id": case_id,
            "view": view,
            "quality": quality,
            "dice": dice(p, g),
            "iou": iou(p, g),
            "boundary_f1": b["boundary_f1"],
            "hd95": b["hd95"],
            "assd": b["assd"],
            "vertebra_f1": counts.pop("vertebra_f1"),
            BOUNDARY_TAU_PX: tau_px,
            BOUNDARY_TOLERANCE: rule,
            **counts,
            "distance_unit": "pixel" if spacing_mm is None else "mm",
        }
        for key, value in extra.items():
            if key in row:
                raise DataError(f"{where}: extra column '{key}' clashes with a metric column")
            row[key] = value
        self._rows.append(row)
        return row

    def rows(self) -> list[dict[str, Any]]:
        """The accumulated rows (copies, so callers may modify them)."""
        return [dict(r) for r in self._rows]

    def aggregate(self) -> dict[str, Any]:
        """Summary of the rows so far: see :func:`r2mfnet.evaluation.summaries.summarize`."""
        return summarize(self._rows)

    def reset(self) -> None:
        """Forget every row (start a new evaluation)."""
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
