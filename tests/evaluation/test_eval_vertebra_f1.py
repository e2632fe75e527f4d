"""Separated-vertebra F1 and its counts on crafted masks (values worked out in the comments).

The ground truth is four 6x6 "vertebrae" (area 36) in rows 2-7, 10-15, 18-23, 26-31, columns 3-8,
with two background rows between neighbours: four 4-connected components.
"""
from __future__ import annotations

import numpy as np
import pytest

from r2mfnet.evaluation import vertebra_f1, vertebra_match
from r2mfnet.evaluation.vertebra_f1 import components

TOPS = (2, 10, 18, 26)


def spine() -> np.ndarray:
    m = np.zeros((34, 12), bool)
    for top in TOPS:
        m[top : top + 6, 3:9] = True
    return m


def counts(pred, gt):
    r = vertebra_match(pred, gt)
    return (r["vertebrae_gt"], r["vertebrae_pred"], r["vertebrae_matched"],
            r["vertebrae_merged"], r["vertebrae_split"], r["vertebrae_missed"])


def test_all_separated_scores_one():
    gt = spine()
    assert vertebra_f1(gt, gt) == 1.0
    assert counts(gt, gt) == (4, 4, 4, 0, 0, 0)
    # Each prediction one row shorter (area 30, IoU 30/36): still four matches.
    pred = gt.copy()
    for top in TOPS:
        pred[top] = False
    assert vertebra_f1(pred, gt) == 1.0


def test_two_vertebrae_merged():
    gt = spine()
    pred = gt.copy()
    pred[8:10, 3:9] = True  # bridge the disc between the first two: one blob of 36+12+36 = 84
    # IoU(blob, v1) = 36/84 < 0.5: neither matches. TP = 2 of n_gt 4 + n_pred 3 -> F1 = 4/7.
    assert vertebra_f1(pred, gt) == pytest.approx(4 / 7)
    assert counts(pred, gt) == (4, 3, 2, 2, 0, 0)


def test_a_one_pixel_bridge_merges_too():
    # A single-column bridge is enough to join two 4-connected components.
    gt = spine()
    pred = gt.copy()
    pred[8:10, 5] = True
    assert counts(pred, gt) == (4, 3, 2, 2, 0, 0)


def test_one_vertebra_split():
    gt = spine()
    pred = gt.copy()
    pred[4, 3:9] = False  # v1 -> rows 2-3 (12 px = 1/3 of it) and rows 5-7 (18 px = 1/2)
    # Larger piece: IoU 18/36 = 0.5, NOT > 0.5, so v1 is unmatched. TP 3, n_pred 5 -> F1 6/9.
    assert vertebra_f1(pred, gt) == pytest.approx(2 / 3)
    assert counts(pred, gt) == (4, 5, 3, 0, 1, 0)


def test_a_sliver_is_not_a_split():
    gt = spine()
    pred = gt.copy()
    pred[3, 3:9] = False  # v1 -> row 2 (6 px = 1/6 < 1/4) and rows 4-7 (24 px, IoU 2/3 > 0.5)
    # v1 still matches; the sliver is an unmatched prediction: TP 4, n_pred 5 -> F1 8/9.
    assert vertebra_f1(pred, gt) == pytest.approx(8 / 9)
    assert counts(pred, gt) == (4, 5, 4, 0, 0, 0)


def test_one_vertebra_missing():
    gt = spine()
    pred = gt.copy()
    pred[18:24] = False  # v3 not predicted at all: TP 3, n_pred 3 -> F1 6/7
    assert vertebra_f1(pred, gt) == pytest.approx(6 / 7)
    assert counts(pred, gt) == (4, 3, 3, 0, 0, 1)
    # Only 2 of its 6 rows predicted (12 of 36 px < 1/2): missed; IoU 1/3, unmatched -> F1 6/8.
    pred[18:20, 3:9] = True
    assert vertebra_f1(pred, gt) == pytest.approx(6 / 8)
    assert counts(pred, gt) == (4, 4, 3, 0, 0, 1)
    # 4 of 6 rows (24 px >= 1/2): not missed, and IoU 2/3 matches.
    pred[20:22, 3:9] = True
    assert counts(pred, gt) == (4, 4, 4, 0, 0, 0)


def test_empty_masks():
    gt = spine()
    empty = np.zeros_like(gt)
    assert vertebra_f1(empty, gt) == 0.0
    assert counts(empty, gt) == (4, 0, 0, 0, 0, 4)  # all missed
    assert vertebra_f1(gt, empty) == 0.0
    assert counts(gt, empty) == (0, 4, 0, 0, 0, 0)
    assert vertebra_f1(empty, empty) == 1.0
    assert counts(empty, empty) == (0, 0, 0, 0, 0, 0)


def test_components_are_4_connected():
    m = np.zeros((6, 6), bool)
    m[0:3, 0:3] = True
    m[3:6, 3:6] = True  # touches the first square only at a corner (diagonally)
    _, n = components(m)
    assert n == 2
    # As two vertebrae: the diagonal contact does not merge them.
    assert vertebra_f1(m, m) == 1.0


def test_merged_with_a_small_neighbour_still_matches_the_large_one():
    # A blob joining a large GT vertebra to a small GT piece: it matches the large one and counts
    # both as merged (the counts are diagnostics, not a partition).
    gt = np.zeros((12, 12), bool)
    gt[0:6, 3:9] = True  # large, 36 px
    gt[8:10, 5:8] = True  # small, 6 px
    pred = gt.copy()
    pred[6:8, 5:8] = True  # a 6-px bridge: one blob of 36 + 6 + 6 = 48 px
    # IoU(blob, large) = 36/48 > 0.5: matched; the blob covers all of both -> 2 merged.
    r = vertebra_match(pred, gt)
    assert (r["vertebrae_gt"], r["vertebrae_pred"], r["vertebrae_matched"]) == (2, 1, 1)
    assert r["vertebrae_merged"] == 2
    assert r["vertebra_f1"] == pytest.approx(2 / 3)  # 2 x 1 / (2 + 1)


def test_rejects_label_maps_and_mismatched_shapes():
    gt = spine().astype(np.uint8)
    labels = gt * 3  # a vertebra label map: score its union (labels > 0) instead
    with pytest.raises(ValueError):
        vertebra_match(labels, gt)
    assert vertebra_f1(labels > 0, gt) == 1.0
    with pytest.raises(ValueError):
        vertebra_match(gt[:-1], gt)
