"""Segmentation metrics at original resolution and their summaries.

``SegmentationMetric`` accumulates per-case rows (Dice, IoU, boundary F1, HD95, ASSD, vertebra
F1); ``summaries.summarize`` / ``to_markdown`` / ``write_summary`` turn them into tables.
Conventions (empty masks, boundary definition and tolerance, units, vertebra matching) are in
``docs/metrics.md``.
"""
from __future__ import annotations

from r2mfnet.evaluation.boundary import boundary, boundary_metrics
from r2mfnet.evaluation.columns import METRIC_NAMES
from r2mfnet.evaluation.metrics import (
    SegmentationMetric,
    assd,
    boundary_f1,
    dice,
    hd95,
    iou,
)
from r2mfnet.evaluation.summaries import summarize, to_markdown, write_rows_csv, write_summary
from r2mfnet.evaluation.tolerance import BoundaryTolerance
from r2mfnet.evaluation.vertebra_f1 import vertebra_f1, vertebra_match

__all__ = [
    "BoundaryTolerance",
    "METRIC_NAMES",
    "SegmentationMetric",
    "assd",
    "boundary",
    "boundary_f1",
    "boundary_metrics",
    "dice",
    "hd95",
    "iou",
    "summarize",
    "to_markdown",
    "vertebra_f1",
    "vertebra_match",
    "write_rows_csv",
    "write_summary",
]
