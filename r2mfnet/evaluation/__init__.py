"""Segmentation metrics at original resolution and their summaries.

``SegmentationMetric`` accumulates per-case rows (Dice, IoU, boundary F1, HD95, ASSD);
``report.summarize`` / ``to_markdown`` / ``write_summary`` turn them into tables. Conventions
(empty masks, boundary definition, units) are in ``docs/metrics.md``.
"""
from __future__ import annotations

from r2mfnet.evaluation.boundary import boundary, boundary_metrics, resolve_tau
from r2mfnet.evaluation.metrics import (
    METRIC_NAMES,
    SegmentationMetric,
    assd,
    boundary_f1,
    dice,
    hd95,
    iou,
)
from r2mfnet.evaluation.report import summarize, to_markdown, write_rows_csv, write_summary

__all__ = [
    "METRIC_NAMES",
    "SegmentationMetric",
    "assd",
    "boundary",
    "boundary_f1",
    "boundary_metrics",
    "dice",
    "hd95",
    "iou",
    "resolve_tau",
    "summarize",
    "to_markdown",
    "write_rows_csv",
    "write_summary",
]
