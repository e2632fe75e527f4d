"""Overlap metrics and the per-case accumulator ``SegmentationMetric``.

All functions take binary masks (bool, or numbers that are all 0/1) of the same shape, at the
image's ORIGINAL resolution: metrics computed at the network's letterboxed size would reward
errors hidden by down-sampling.

Empty-mask conventions (tested; see ``docs/metrics.md``)
    =====================  ===========  ====================
    case                   Dice, IoU,   HD95, ASSD
                           BF
    =====================  ===========  ====================
    both masks empty       1.0          0.0
    exactly one empty      0.0          NaN (counted as
                                        ``n_failed`` by
                                        ``report.summarize``)
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
    resolve_tau,
)

__all__ = [
    "METRIC_NAMES",
    "SegmentationMetric",
    "assd",
    "boundary",
    "boundary_f1",
    "dice",
    "hd95",
    "iou",
]

METRIC_NAMES: tuple[str, ...] = ("dice", "iou", "boundary_f1", "hd95", "assd")
"""The metric columns of every row, in the order of ``metrics_per_case.csv``."""


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

    >>> m = SegmentationMetric(tau=2.0)
    >>> m.update(pred, gt, case_id="c01", view="coronal", quality="high", spacing_mm=0.2)
    >>> m.rows()[0]["dice"], m.aggregate()["per_view"]["coronal"]["dice"]["mean"]

    Rows hold ``case_id, view, quality, dice, iou, boundary_f1, hd95, assd`` plus any ``extra``
    keyword given to :meth:`update` (e.g. ``split`` or ``image`` path), in that order.
    ``hd95``/``assd`` are in mm when ``spacing_mm`` is given, else in pixels; the row's
    ``distance_unit`` says which. BF's tolerance is always in pixels.
    """

    def __init__(self, tau: float = 2.0, tau_fraction: float | None = None):
        resolve_tau((1, 1), tau, tau_fraction)  # validate early, not at the first update
        self.tau = float(tau)
        self.tau_fraction = tau_fraction
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
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from exc
        b = boundary_metrics(p, g, tau=self.tau, tau_fraction=self.tau_fraction, spacing=spacing_mm)
        row: dict[str, Any] = {
            "case_id": case_id,
            "view": view,
            "quality": quality,
            "dice": dice(p, g),
            "iou": iou(p, g),
            "boundary_f1": b["boundary_f1"],
            "hd95": b["hd95"],
            "assd": b["assd"],
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
        """Summary of the rows so far: see :func:`r2mfnet.evaluation.report.summarize`."""
        from r2mfnet.evaluation.report import summarize

        return summarize(self._rows)

    def reset(self) -> None:
        """Forget every row (start a new evaluation)."""
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
