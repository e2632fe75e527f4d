"""Aggregation per view / quality, failure counting and atomic report files."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from r2mfnet.evaluation import (
    SegmentationMetric,
    summarize,
    to_markdown,
    write_rows_csv,
    write_summary,
)


def _rows():
    return [
        {"case_id": "a", "view": "coronal", "quality": "high", "dice": 0.9, "hd95": 2.0},
        {"case_id": "b", "view": "coronal", "quality": "low", "dice": 0.7, "hd95": float("nan")},
        {"case_id": "a", "view": "left_bending", "quality": "high", "dice": 0.8, "hd95": 4.0},
        {"case_id": "c", "view": "coronal", "quality": None, "dice": 0.5, "hd95": 6.0},
    ]


def test_summarize_groups_means_std_n_and_failures():
    s = summarize(_rows(), metrics=("dice", "hd95"))
    o = s["overall"]
    assert o["dice"]["mean"] == pytest.approx(0.725)
    assert o["dice"]["std"] == pytest.approx(np.std([0.9, 0.7, 0.8, 0.5], ddof=1))
    assert o["dice"]["n"] == 4 and o["dice"]["n_failed"] == 0
    assert o["hd95"]["mean"] == pytest.approx(4.0)  # NaN not averaged ...
    assert o["hd95"]["n"] == 3 and o["hd95"]["n_failed"] == 1  # ... but counted
    assert list(s["per_view"]) == ["coronal", "left_bending"]
    cor = s["per_view"]["coronal"]
    assert cor["dice"]["mean"] == pytest.approx(0.7) and cor["dice"]["n"] == 3
    assert cor["hd95"]["n"] == 2 and cor["hd95"]["n_failed"] == 1
    lb = s["per_view"]["left_bending"]["dice"]
    assert lb["n"] == 1 and lb["mean"] == pytest.approx(0.8) and math.isnan(lb["std"])
    assert list(s["per_quality"]) == ["high", "low", "unknown"]
    assert s["per_quality"]["high"]["dice"]["mean"] == pytest.approx(0.85)
    assert s["per_quality"]["high"]["dice"]["n"] == 2
    assert s["per_quality"]["unknown"]["dice"]["n"] == 1
    assert s["n_rows"] == 4


def test_empty_rows_summary_is_well_formed():
    s = summarize([])
    assert s["overall"]["dice"]["n"] == 0 and math.isnan(s["overall"]["dice"]["mean"])
    assert s["per_view"] == {} and s["per_quality"] == {}
    to_markdown(s)


def test_metric_aggregate_and_files(tmp_path):
    m = SegmentationMetric()
    gt = np.zeros((20, 20), bool)
    gt[5:15, 5:15] = True
    m.update(gt, gt, "a", "coronal", "high")
    m.update(np.zeros_like(gt), gt, "b", "right_bending", "medium")  # one empty: HD95 NaN
    s = m.aggregate()
    assert s["overall"]["dice"]["mean"] == pytest.approx(0.5)
    assert s["overall"]["hd95"]["n_failed"] == 1 and s["overall"]["hd95"]["n"] == 1
    md = to_markdown(s)
    assert "| coronal | 1 |" in md and "1 failed" in md and "HD95 (px)" in md
    # Height 20 px, no spacing: BF tolerance 0.5 % x 20 = 0.1 px, printed with the result.
    assert "BF (tol 0.5 % of height)" in md and "vertebra F1" in md
    assert "BF tolerance: 0.5 % of height = 0.10 px per image." in md
    assert s["boundary_tolerance"] == {"rule": "0.5 % of height", "tau_px_min": 0.1, "tau_px_max": 0.1}
    # One square each: matched in "a"; missed in "b" (empty prediction).
    assert s["vertebra_counts"] == {"gt": 2, "pred": 1, "matched": 1, "merged": 0, "split": 0, "missed": 1}
    assert s["overall"]["vertebra_f1"]["mean"] == pytest.approx(0.5)

    csv_path = write_rows_csv(m.rows(), tmp_path / "metrics_per_case.csv")
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:11] == [
        "case_id", "view", "quality", "dice", "iou", "boundary_f1", "hd95", "assd", "vertebra_f1",
        "boundary_tau_px", "boundary_tolerance",
    ]
    assert rows[1]["hd95"] == "nan" and float(rows[0]["dice"]) == 1.0
    assert rows[1]["vertebrae_missed"] == "1" and float(rows[1]["vertebra_f1"]) == 0.0

    jpath, mpath = write_summary(s, tmp_path / "out")
    data = json.loads(jpath.read_text())  # strict JSON: NaN written as null
    assert data["overall"]["hd95"]["std"] is None
    assert data["per_view"]["coronal"]["dice"]["mean"] == 1.0
    assert mpath.read_text() == md
    assert data["boundary_tolerance"]["rule"] == "0.5 % of height"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # no temporary files left


def test_mixed_tolerance_rules_are_all_named():
    rows = [
        {"case_id": "a", "view": "coronal", "boundary_f1": 0.8, "boundary_tau_px": 4.0,
         "boundary_tolerance": "2.5 mm"},
        {"case_id": "b", "view": "coronal", "boundary_f1": 0.6, "boundary_tau_px": 12.0,
         "boundary_tolerance": "0.5 % of height"},
    ]
    s = summarize(rows, metrics=("boundary_f1",))
    assert s["boundary_tolerance"] == {"rule": "2.5 mm or 0.5 % of height", "tau_px_min": 4.0,
                                       "tau_px_max": 12.0}
    assert s["vertebra_counts"] is None  # rows without counts: no totals line
    md = to_markdown(s)
    assert "BF (tol 2.5 mm or 0.5 % of height)" in md
    assert "BF tolerance: 2.5 mm or 0.5 % of height = 4.00–12.00 px per image." in md
    assert "Vertebrae" not in md
