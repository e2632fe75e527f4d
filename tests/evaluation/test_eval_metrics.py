"""Segmentation metrics against hand-computed cases (values worked out in the comments)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from r2mfnet.errors import DataError
from r2mfnet.evaluation import (
    SegmentationMetric,
    assd,
    boundary,
    boundary_f1,
    boundary_metrics,
    dice,
    hd95,
    iou,
)

SQRT2, SQRT5, SQRT8 = math.sqrt(2), math.sqrt(5), math.sqrt(8)


def square(shape, top, left, size):
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


# ---------------------------------------------------------------- overlap
def test_dice_iou_squares_offset_by_one_pixel():
    # 4x4 squares, columns 2..5 and 3..6: intersection 4x3 = 12, union 16+16-12 = 20.
    a = square((8, 10), 2, 2, 4)
    b = square((8, 10), 2, 3, 4)
    assert dice(a, b) == pytest.approx(2 * 12 / 32)  # 0.75
    assert iou(a, b) == pytest.approx(12 / 20)  # 0.6
    assert dice(a, a) == 1.0 and iou(a, a) == 1.0


def test_overlap_accepts_01_ints_and_rejects_probabilities():
    a = square((6, 6), 1, 1, 3)
    assert dice(a.astype(np.uint8), a) == 1.0
    with pytest.raises(ValueError):
        dice(a * 0.7, a)
    with pytest.raises(ValueError):
        iou(a.astype(np.uint8) * 255, a)
    with pytest.raises(ValueError):
        dice(a, a[:5])


# ---------------------------------------------------------------- boundary
def test_boundary_is_mask_minus_4_connected_erosion():
    a = square((8, 8), 2, 2, 4)
    b = boundary(a)
    assert b.sum() == 12  # 4x4 ring: 16 - inner 2x2
    assert not b[3:5, 3:5].any()
    # Off-image counts as background: a full image is all boundary at its edge.
    full = np.ones((5, 5), bool)
    assert boundary(full).sum() == 16
    # 4-connected erosion: a diagonal-only neighbour of background stays interior.
    plus = np.zeros((7, 7), bool)
    plus[1:6, 1:6] = True
    plus[1, 1] = False  # corner cut: pixel (2,2) touches background only diagonally
    assert not boundary(plus)[2, 2]


def test_boundary_f1_shift_two_pixels_tau0_tau1_tau2():
    # GT ring: rows 2,5 x cols 2..5 and rows 3,4 x cols 2,5. Pred = same square 2 px right
    # (cols 4..7). tau=0: pred pixels on GT ring are rows 2,5 x cols 4,5 = 4 of 12 -> P = R = 1/3.
    # tau=1: add rows 2,5 col 6 (d=1) and rows 3,4 col 4 (d=1 to col 5) -> 8 of 12 -> 2/3.
    # tau=2: every pixel is within 2 -> 1.
    gt = square((8, 10), 2, 2, 4)
    pred = square((8, 10), 2, 4, 4)
    assert boundary_f1(pred, gt, tau=0) == pytest.approx(1 / 3)
    assert boundary_f1(pred, gt, tau=1) == pytest.approx(2 / 3)
    assert boundary_f1(pred, gt, tau=2) == pytest.approx(1.0)
    # Shift of one pixel: tau=0 -> 6/12 on the ring (rows 2,5 x cols 3,4,5); tau=1 -> all.
    pred1 = square((8, 10), 2, 3, 4)
    assert boundary_f1(pred1, gt, tau=0) == pytest.approx(0.5)
    assert boundary_f1(pred1, gt, tau=1) == pytest.approx(1.0)


def test_boundary_f1_asymmetric_precision_recall():
    # pred = 2x2 inside a 6x6 GT: pred boundary (4 px) all at distance 2 from the GT ring; GT
    # ring distances to pred: 8 x 2, 8 x sqrt5, 4 x sqrt8. tau=2: P = 1, R = 8/20 -> F1 = 4/7.
    gt = square((10, 10), 2, 2, 6)
    pred = square((10, 10), 4, 4, 2)
    assert boundary_f1(pred, gt, tau=2) == pytest.approx(2 * 1 * 0.4 / 1.4)
    assert boundary_f1(pred, gt, tau=SQRT5) == pytest.approx(2 * 0.8 / 1.8)  # inclusive


def test_boundary_f1_needs_a_valid_pixel_tolerance():
    a = square((8, 10), 2, 2, 4)
    with pytest.raises(TypeError):
        boundary_f1(a, a)  # no hidden default: the right tolerance depends on the image
    with pytest.raises(ValueError, match="tau"):
        boundary_f1(a, a, tau=-1)
    with pytest.raises(ValueError, match="tau"):
        boundary_metrics(a, a, tau=float("nan"))


# ---------------------------------------------------------------- distances
def test_hd95_assd_concentric_squares():
    gt = square((10, 10), 2, 2, 6)
    pred = square((10, 10), 4, 4, 2)
    # pred->gt: 4 x 2.0 ; gt->pred: 8 x 2, 8 x sqrt5, 4 x sqrt8 (corners).
    expected_assd = (4 * 2 + 8 * 2 + 8 * SQRT5 + 4 * SQRT8) / 24
    assert assd(pred, gt) == pytest.approx(expected_assd)
    # P95 of the 20 GT->pred distances (sorted, linear interp at index 18.05) = sqrt8 > 2.
    assert hd95(pred, gt) == pytest.approx(SQRT8)
    assert hd95(gt, pred) == pytest.approx(SQRT8)  # symmetric
    assert hd95(gt, gt) == 0.0 and assd(gt, gt) == 0.0


def test_spacing_scales_distances_not_bf():
    gt = square((10, 10), 2, 2, 6)
    pred = square((10, 10), 4, 4, 2)
    assert hd95(pred, gt, spacing=0.5) == pytest.approx(0.5 * SQRT8)
    assert assd(pred, gt, spacing=(2.0, 2.0)) == pytest.approx(2 * assd(pred, gt))
    # Anisotropic: a square shifted 1 column: every distance is along x (or 0) -> scaled by sx.
    a = square((10, 10), 2, 2, 4)
    b = square((10, 10), 2, 3, 4)
    assert hd95(a, b, spacing=(1.0, 3.0)) == pytest.approx(3.0)
    assert hd95(a, b, spacing=(3.0, 1.0)) == pytest.approx(1.0)
    bm = boundary_metrics(pred, gt, tau=2, spacing=0.5)
    assert bm["boundary_f1"] == pytest.approx(boundary_f1(pred, gt, tau=2))
    assert bm["hd95"] == pytest.approx(0.5 * SQRT8)
    bm2 = boundary_metrics(a, b, tau=2, spacing=(1.0, 3.0))
    assert bm2["hd95"] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        hd95(a, b, spacing=0)


# ---------------------------------------------------------------- empty masks
def test_empty_mask_conventions():
    e = np.zeros((6, 6), bool)
    a = square((6, 6), 1, 1, 3)
    for f in (dice, iou, lambda p, g: boundary_f1(p, g, tau=2)):
        assert f(e, e) == 1.0
        assert f(a, e) == 0.0 and f(e, a) == 0.0
    assert hd95(e, e) == 0.0 and assd(e, e) == 0.0
    for f in (hd95, assd):
        assert math.isnan(f(a, e)) and math.isnan(f(e, a))
    assert boundary_metrics(e, e, tau=2) == {"boundary_f1": 1.0, "hd95": 0.0, "assd": 0.0}


# ---------------------------------------------------------------- accumulator
def test_segmentation_metric_rows_and_errors():
    m = SegmentationMetric(tau=1.0)
    gt = square((8, 10), 2, 2, 4)
    pred = square((8, 10), 2, 3, 4)
    row = m.update(pred, gt, case_id="c1", view="coronal", quality="high", split="test")
    assert list(row)[:8] == [
        "case_id", "view", "quality", "dice", "iou", "boundary_f1", "hd95", "assd"
    ]
    assert row["dice"] == pytest.approx(0.75) and row["iou"] == pytest.approx(0.6)
    assert row["boundary_f1"] == pytest.approx(1.0) and row["hd95"] == pytest.approx(1.0)
    assert row["split"] == "test" and row["distance_unit"] == "pixel"
    # One 4x4 square each, IoU 0.6 > 0.5: one matched vertebra.
    assert row["vertebra_f1"] == 1.0 and row["vertebrae_matched"] == 1
    assert row["boundary_tau_px"] == 1.0 and row["boundary_tolerance"] == "1 px"
    row2 = m.update(pred, gt, "c2", "coronal", spacing_mm=0.25)
    assert row2["hd95"] == pytest.approx(0.25) and row2["distance_unit"] == "mm"
    assert row2["boundary_tau_px"] == 1.0  # a fixed pixel tolerance ignores the spacing
    assert len(m) == 2 and len(m.rows()) == 2
    with pytest.raises(DataError, match="c3"):
        m.update(pred, gt[:, :9], "c3", "left_bending")
    with pytest.raises(DataError, match="c4"):
        m.update(pred.astype(float) * 0.5, gt, "c4", "coronal")
    with pytest.raises(DataError, match="c5"):
        m.update(pred[None], gt[None], "c5", "coronal")
    assert len(m) == 2  # failed updates add nothing
    m.reset()
    assert m.rows() == []
