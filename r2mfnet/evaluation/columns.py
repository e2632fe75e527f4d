"""Column names of the per-case metric rows, shared by ``metrics`` and ``summaries``.

They live in their own module so that ``summaries`` (which summarises rows) and ``metrics`` (which
makes them) both import downwards from here instead of from each other.
"""
from __future__ import annotations

METRIC_NAMES: tuple[str, ...] = ("dice", "iou", "boundary_f1", "hd95", "assd", "vertebra_f1")
"""The metric columns of every row, in the order of ``metrics_per_case.csv``; each is summarised
as mean ± SD per group."""

VERTEBRA_COUNT_NAMES: tuple[str, ...] = (
    "vertebrae_gt",
    "vertebrae_pred",
    "vertebrae_matched",
    "vertebrae_merged",
    "vertebrae_split",
    "vertebrae_missed",
)
"""Per-case component counts behind ``vertebra_f1``; summarised as totals, not means."""

BOUNDARY_TAU_PX = "boundary_tau_px"
"""Column: the boundary-F1 tolerance actually used for the case, in pixels."""

BOUNDARY_TOLERANCE = "boundary_tolerance"
"""Column: the rule that gave that tolerance, e.g. ``"2.5 mm"`` or ``"0.5 % of height"``."""
