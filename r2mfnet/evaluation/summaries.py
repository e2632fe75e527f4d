"""Summaries of per-case metric rows: overall, per view and per quality grade.

Statistics of each metric in each group: ``mean``, ``std`` (sample standard deviation,
``ddof=1``, the usual "mean +/- SD" of papers; NaN when fewer than two values), ``n`` (number of
finite values that entered mean and std) and ``n_failed`` (rows whose value is NaN/None/inf,
e.g. HD95 when exactly one mask is empty). Failures are reported, never silently dropped.
The boundary-F1 tolerance of the rows (its rule and its range in pixels) and the vertebra counts
(totals) are reported beside the statistics, so a BF value is never printed without its
tolerance.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from r2mfnet.atomic import atomic_write_text
from r2mfnet.data.views import QUALITIES, VIEWS
from r2mfnet.evaluation.columns import (
    BOUNDARY_TAU_PX,
    BOUNDARY_TOLERANCE,
    METRIC_NAMES,
    VERTEBRA_COUNT_NAMES,
)

UNKNOWN_QUALITY = "unknown"
"""Group name for rows whose quality is missing (``None`` or empty)."""

_HEADERS = {
    "dice": "Dice",
    "iou": "IoU",
    "boundary_f1": "BF",
    "hd95": "HD95",
    "assd": "ASSD",
    "vertebra_f1": "vertebra F1",
}


def _finite(value: Any) -> float | None:
    """``float(value)`` if it is a finite number, else ``None`` (a failed measurement)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _stats(values: Sequence[Any]) -> dict[str, float | int]:
    finite = [f for f in (_finite(v) for v in values) if f is not None]
    n = len(finite)
    arr = np.asarray(finite, dtype=np.float64)
    return {
        "mean": float(arr.mean()) if n else float("nan"),
        "std": float(arr.std(ddof=1)) if n >= 2 else float("nan"),
        "n": n,
        "n_failed": len(values) - n,
    }


def _group(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    return {m: _stats([r.get(m) for r in rows]) for m in metrics}


def _ordered_keys(found: Iterable[str], preferred: Sequence[str]) -> list[str]:
    found = set(found)
    return [k for k in preferred if k in found] + sorted(found - set(preferred))


def _tolerance(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The BF tolerance rules of the rows (``" or "``-joined, first-seen order) and px range."""
    rules = list(dict.fromkeys(str(r[BOUNDARY_TOLERANCE]) for r in rows if r.get(BOUNDARY_TOLERANCE)))
    taus = [t for t in (_finite(r.get(BOUNDARY_TAU_PX)) for r in rows) if t is not None]
    return {
        "rule": " or ".join(rules) if rules else None,
        "tau_px_min": min(taus) if taus else None,
        "tau_px_max": max(taus) if taus else None,
    }


def _counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """Totals of the vertebra counts over the rows that have them (``None`` if none has)."""
    have = [r for r in rows if all(_finite(r.get(k)) is not None for k in VERTEBRA_COUNT_NAMES)]
    if not have:
        return None
    return {k[len("vertebrae_"):]: int(sum(int(r[k]) for r in have)) for k in VERTEBRA_COUNT_NAMES}


def summarize(
    rows: Iterable[Mapping[str, Any]], metrics: Sequence[str] = METRIC_NAMES
) -> dict[str, Any]:
    """Summary dict of metric rows (as made by ``SegmentationMetric``).

    ``{"overall": {metric: {mean, std, n, n_failed}}, "per_view": {view: {...}},
    "per_quality": {grade: {...}}, "n_rows": int, "distance_unit": "pixel"|"mm"|"mixed"|None,
    "boundary_tolerance": {"rule", "tau_px_min", "tau_px_max"}, "vertebra_counts": {"gt",
    "pred", "matched", "merged", "split", "missed"} (totals) or None}``. ``rule`` is e.g.
    ``"2.5 mm"``, or ``"2.5 mm or 0.5 % of height"`` when rows used different rules. Views appear
    in ``VIEWS`` order, grades in ``QUALITIES`` order, then any others sorted; rows without a
    quality are grouped under ``"unknown"``.
    """
    rows = list(rows)
    per_view: dict[str, list] = {}
    per_quality: dict[str, list] = {}
    for r in rows:
        per_view.setdefault(str(r.get("view")), []).append(r)
        q = r.get("quality")
        per_quality.setdefault(str(q) if q not in (None, "") else UNKNOWN_QUALITY, []).append(r)
    units = {r.get("distance_unit") for r in rows if r.get("distance_unit")}
    unit = None if not units else (units.pop() if len(units) == 1 else "mixed")
    return {
        "overall": _group(rows, metrics),
        "per_view": {v: _group(per_view[v], metrics) for v in _ordered_keys(per_view, VIEWS)},
        "per_quality": {
            q: _group(per_quality[q], metrics)
            for q in _ordered_keys(per_quality, (*QUALITIES, UNKNOWN_QUALITY))
        },
        "n_rows": len(rows),
        "distance_unit": unit,
        "boundary_tolerance": _tolerance(rows),
        "vertebra_counts": _counts(rows),
    }


def _cell(stats: Mapping[str, Any], digits: int) -> str:
    mean, std, failed = stats["mean"], stats["std"], stats["n_failed"]
    if not math.isfinite(mean):
        text = "–"
    elif math.isfinite(std):
        text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    else:
        text = f"{mean:.{digits}f}"
    if failed:
        text += f" ({failed} failed)"
    return text


def _metrics_of(summary: Mapping[str, Any]) -> list[str]:
    return list(summary["overall"].keys())


def to_markdown(summary: Mapping[str, Any], digits: int = 3) -> str:
    """Markdown tables (overall, per view, per quality): ``mean ± std`` per metric and ``n``.

    ``n`` is the number of rows in the group; a cell whose metric failed for some rows says
    ``(k failed)``, and those rows are not in its mean. The BF header names its tolerance rule
    (``BF (tol 2.5 mm)``) and a note under the tables gives its range in pixels.
    """
    metrics = _metrics_of(summary)
    unit = summary.get("distance_unit")
    tol = summary.get("boundary_tolerance") or {}
    heads = []
    for m in metrics:
        h = _HEADERS.get(m, m)
        if m in ("hd95", "assd") and unit:
            h += f" ({'px' if unit == 'pixel' else unit})"
        if m == "boundary_f1" and tol.get("rule"):
            h += f" (tol {tol['rule']})"
        heads.append(h)

    def table(title: str, groups: Mapping[str, Mapping[str, Any]], first: str) -> list[str]:
        lines = [f"### {title}", "", f"| {first} | n | " + " | ".join(heads) + " |"]
        lines.append("|" + "---|" * (len(heads) + 2))
        for name, g in groups.items():
            n = max((g[m]["n"] + g[m]["n_failed"]) for m in metrics) if metrics else 0
            cells = [_cell(g[m], digits) for m in metrics]
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
        return lines + [""]

    out = ["## Segmentation metrics", ""]
    out += table("Overall", {"all": summary["overall"]}, "group")
    out += table("Per view", summary["per_view"], "view")
    out += table("Per quality", summary["per_quality"], "quality")
    out.append(
        "Mean ± sample SD (ddof=1); n = cases; failed = undefined distance (one mask empty)."
    )
    if tol.get("tau_px_min") is not None:
        lo, hi = tol["tau_px_min"], tol["tau_px_max"]
        span = f"{lo:.2f} px" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f} px"
        out += ["", f"BF tolerance: {tol['rule']} = {span} per image."]
    counts = summary.get("vertebra_counts")
    if counts:
        out += [""]
        out.append(
            f"Vertebrae (4-connected components), all cases: {counts['gt']} in the ground truth, "
            f"{counts['pred']} predicted, {counts['matched']} matched at IoU > 0.5; "
            f"{counts['merged']} merged, {counts['split']} split, {counts['missed']} missed."
        )
    return "\n".join(out) + "\n"


def _jsonable(obj: Any) -> Any:
    """NaN/inf -> ``None`` (strict JSON has no NaN), numpy scalars -> Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_rows_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows to ``path`` as CSV, atomically.

    Columns: ``case_id, view, quality``, the metrics (``METRIC_NAMES``), then any other keys in
    order of first appearance (for ``SegmentationMetric`` rows: ``boundary_tau_px``,
    ``boundary_tolerance``, the vertebra counts, ``distance_unit``, extras). ``None`` is written as an empty cell, NaN as ``nan``.
    """
    rows = list(rows)
    columns = ["case_id", "view", "quality", *METRIC_NAMES]
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return atomic_write_text(path, buf.getvalue())


def write_summary(summary: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` (NaN as null) and ``summary.md`` into ``out_dir``, atomically."""
    out = Path(out_dir)
    json_path = atomic_write_text(
        out / "summary.json", json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n"
    )
    md_path = atomic_write_text(out / "summary.md", to_markdown(summary))
    return json_path, md_path
