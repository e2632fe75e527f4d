"""Evaluate a checkpoint on held-out views at each image's original resolution.

Writes ``metrics_per_case.csv`` (one row per view, with the boundary-F1 tolerance used and the
vertebra counts), ``summary.json``, ``summary.md`` and overlay PNGs of the worst cases. The
number of evaluated views must equal the number requested: a view that cannot be read fails the
whole run with its name, rather than silently shrinking the denominator.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from r2mfnet.errors import DataError, R2MFNetError
from r2mfnet.evaluation.metrics import SegmentationMetric
from r2mfnet.evaluation.summaries import summarize, to_markdown, write_rows_csv, write_summary
from r2mfnet.evaluation.tolerance import DEFAULT_TAU_HEIGHT_FRACTION, DEFAULT_TAU_MM
from r2mfnet.inference.predictor import Predictor
from r2mfnet.pictures import overlay, write_png

log = logging.getLogger("r2mfnet.evaluate")


def evaluate_records(
    predictor: Predictor,
    records: Sequence[Any],
    output_dir: str | Path,
    tau: float | None = None,
    tau_mm: float | None = DEFAULT_TAU_MM,
    tau_height_fraction: float = DEFAULT_TAU_HEIGHT_FRACTION,
    worst_cases: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every record, score it, write the result files; return the summary dict.

    ``tau`` / ``tau_mm`` / ``tau_height_fraction`` choose the boundary-F1 tolerance of each view
    (the ``eval.*`` keys of the same names; see :class:`SegmentationMetric`). A multi-class
    (vertebra-level) model is scored on the union of its vertebra classes, like a binary one.
    """
    from r2mfnet.data.dataset import load_view

    out = Path(output_dir)
    if not records:
        raise DataError("no views to evaluate: the requested split is empty")
    metric = SegmentationMetric(tau=tau, tau_mm=tau_mm, tau_height_fraction=tau_height_fraction)
    kept: list[tuple[float, Any, np.ndarray, np.ndarray, np.ndarray]] = []
    failures: list[str] = []
    iterator: Any = records
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(records, desc="evaluate", leave=False, dynamic_ncols=True)
    for record in iterator:
        try:
            image01, mask, info = load_view(record)
        except R2MFNetError as exc:
            failures.append(str(exc))
            continue
        if mask is None:
            failures.append(f"{record.case_id}/{record.view}: no ground-truth mask")
            continue
        pred = predictor.predict_mask(info.array)  # raw pixels; the predictor's rule and clean-up
        spacing = record.pixel_spacing_mm or getattr(info, "pixel_spacing_mm", None)
        metric.update(pred, mask, case_id=record.case_id, view=record.view, quality=record.quality, spacing_mm=spacing)
        dice = metric.rows()[-1]["dice"]
        kept.append((dice, record, image01, pred, mask))
        kept.sort(key=lambda k: k[0])
        del kept[worst_cases:]
    if failures:
        raise DataError(
            f"{len(failures)} of {len(records)} requested views could not be evaluated:\n  - "
            + "\n  - ".join(failures)
        )
    rows = metric.rows()
    assert len(rows) == len(records), "every requested view must have a metrics row"
    summary = summarize(rows)
    write_rows_csv(rows, out / "metrics_per_case.csv")
    write_summary(summary, out)
    for rank, (dice, record, image01, pred, mask) in enumerate(kept, start=1):
        name = f"worst{rank:02d}_{record.case_id}_{record.view}.png".replace("/", "_").replace(" ", "_")
        write_png(out / "worst_cases" / name, overlay(image01, pred, mask))
    log.info("evaluation of %d views written to %s", len(rows), out)
    return summary


def print_summary(summary: dict[str, Any]) -> str:
    """The markdown tables, as printed at the end of training and evaluation."""
    return to_markdown(summary)
