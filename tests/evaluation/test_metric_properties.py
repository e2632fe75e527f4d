"""Metrics against an independent brute-force implementation (Hypothesis property tests).

The brute force follows docs/metrics.md word for word and shares no code with
r2mfnet.evaluation: a boundary pixel is a foreground pixel with a 4-neighbour in the background
or off the image; a surface distance is the smallest Euclidean distance between boundary pixel
centres, each axis scaled by its spacing (row, column); HD95 is the larger of the two directed
95th percentiles (linear interpolation), ASSD the mean of both directions pooled, boundary F1
the harmonic mean of the fractions within ``tau`` pixels. Masks are small (at most 12 x 12), so
the O(n^2) pairwise distances are cheap, and include single pixels, 1-2 px thin lines and
anisotropic spacing.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from r2mfnet.evaluation import SegmentationMetric, assd, boundary, boundary_f1, boundary_metrics, dice, hd95, iou
from r2mfnet.evaluation.columns import BOUNDARY_TAU_PX

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- brute force
def brute_boundary(mask: np.ndarray) -> list[tuple[int, int]]:
    h, w = mask.shape
    out = []
    for r in range(h):
        for c in range(w):
            if not mask[r, c]:
                continue
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if not (0 <= rr < h and 0 <= cc < w) or not mask[rr, cc]:
                    out.append((r, c))
                    break
    return out


def brute_directed(a: list, b: list, spacing: tuple[float, float]) -> np.ndarray:
    sr, sc = spacing
    return np.array([min(math.hypot((ra - rb) * sr, (ca - cb) * sc) for rb, cb in b) for ra, ca in a])


def brute_metrics(pred, gt, tau, spacing=(1.0, 1.0)) -> dict[str, float]:
    bp, bg = brute_boundary(pred), brute_boundary(gt)
    d_pg, d_gp = brute_directed(bp, bg, spacing), brute_directed(bg, bp, spacing)
    px_pg, px_gp = brute_directed(bp, bg, (1.0, 1.0)), brute_directed(bg, bp, (1.0, 1.0))
    precision, recall = np.mean(px_pg <= tau + 1e-9), np.mean(px_gp <= tau + 1e-9)
    bf = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"boundary_f1": float(bf),
            "hd95": float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95))),
            "assd": float((d_pg.sum() + d_gp.sum()) / (len(d_pg) + len(d_gp)))}


# ---------------------------------------------------------------- strategies
shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))
random_masks = shapes.flatmap(lambda s: st.tuples(arrays(bool, s), arrays(bool, s)))
spacings = st.tuples(st.sampled_from([0.1, 0.2, 0.5, 1.0, 1.5]), st.sampled_from([0.1, 0.3, 1.0, 2.0]))
taus = st.sampled_from([0.0, 1.0, math.sqrt(2), 2.0, 3.5])


@st.composite
def thin_masks(draw):
    """A single pixel or a 1-2 px thin horizontal, vertical or diagonal line, on a small image."""
    h, w = draw(st.integers(3, 12)), draw(st.integers(3, 12))
    m = np.zeros((h, w), bool)
    kind = draw(st.sampled_from(["pixel", "row", "column", "diagonal"]))
    r, c = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
    thick = draw(st.integers(1, 2))
    if kind == "pixel":
        m[r, c] = True
    elif kind == "row":
        m[r:r + thick, draw(st.integers(0, c)):c + 1] = True
    elif kind == "column":
        m[draw(st.integers(0, r)):r + 1, c:c + thick] = True
    else:
        for k in range(draw(st.integers(1, min(h, w)))):
            m[(r + k) % h, (c + k) % w] = True
    return m


@st.composite
def thin_pairs(draw):
    a = draw(thin_masks())
    b = np.zeros_like(a)
    b[draw(st.integers(0, a.shape[0] - 1)), draw(st.integers(0, a.shape[1] - 1))] = True
    return a, (b if draw(st.booleans()) else np.roll(a, draw(st.integers(-2, 2)), axis=draw(st.integers(0, 1))))


# ---------------------------------------------------------------- properties
def _assert_matches(pred, gt, tau, spacing):
    want = brute_metrics(pred, gt, tau, spacing)
    got = boundary_metrics(pred, gt, tau=tau, spacing=spacing)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-9), key
    # the single-metric functions agree with the combined one
    assert hd95(pred, gt, spacing) == pytest.approx(got["hd95"], rel=1e-12, abs=1e-12)
    assert assd(pred, gt, spacing) == pytest.approx(got["assd"], rel=1e-12, abs=1e-12)
    assert boundary_f1(pred, gt, tau) == pytest.approx(got["boundary_f1"], rel=1e-12, abs=1e-12)


@SETTINGS
@given(random_masks, taus, spacings)
def test_boundary_metrics_equal_brute_force_on_random_masks(pair, tau, spacing):
    pred, gt = pair
    assume(pred.any() and gt.any())
    assert sorted(zip(*np.nonzero(boundary(pred)))) == brute_boundary(pred)
    _assert_matches(pred, gt, tau, spacing)


@SETTINGS
@given(thin_pairs(), taus, spacings)
def test_boundary_metrics_equal_brute_force_on_single_pixels_and_thin_lines(pair, tau, spacing):
    pred, gt = pair
    assert boundary(pred).sum() == pred.sum()  # thinner than 3 px: all boundary
    _assert_matches(pred, gt, tau, spacing)


@SETTINGS
@given(random_masks, spacings)
def test_metrics_are_symmetric_and_zero_on_identity(pair, spacing):
    pred, gt = pair
    assume(pred.any() and gt.any())
    a, b = boundary_metrics(pred, gt, 1.0, spacing), boundary_metrics(gt, pred, 1.0, spacing)
    assert a["hd95"] == pytest.approx(b["hd95"]) and a["assd"] == pytest.approx(b["assd"])
    assert a["boundary_f1"] == pytest.approx(b["boundary_f1"])
    same = boundary_metrics(pred, pred, 0.0, spacing)
    assert same == {"boundary_f1": 1.0, "hd95": 0.0, "assd": 0.0}
    # overlap metrics: symmetric, Dice = 2 IoU / (1 + IoU)
    assert dice(pred, gt) == dice(gt, pred)
    assert dice(pred, gt) == pytest.approx(2 * iou(pred, gt) / (1 + iou(pred, gt)))


@SETTINGS
@given(random_masks, st.sampled_from([0.1, 0.25, 2.0]))
def test_isotropic_spacing_scales_distances_and_not_boundary_f1(pair, s):
    pred, gt = pair
    assume(pred.any() and gt.any())
    px = boundary_metrics(pred, gt, 1.0)
    mm = boundary_metrics(pred, gt, 1.0, spacing=s)
    assert mm["hd95"] == pytest.approx(px["hd95"] * s) and mm["assd"] == pytest.approx(px["assd"] * s)
    assert mm["boundary_f1"] == px["boundary_f1"]  # tau is in pixels whatever the spacing


def test_anisotropic_assd_hand_computed():
    # Two single pixels one row and one column apart; spacing 0.5 mm per row, 2 mm per column:
    # the one distance (both directions) is hypot(0.5, 2.0) = sqrt(4.25), not 1.25 * sqrt(2)
    # (the averaged spacing) and not sqrt(2) (pixels).
    a = np.zeros((3, 3), bool)
    b = np.zeros((3, 3), bool)
    a[0, 0], b[1, 1] = True, True
    assert assd(a, b, (0.5, 2.0)) == pytest.approx(math.sqrt(4.25))
    assert hd95(a, b, (0.5, 2.0)) == pytest.approx(math.sqrt(4.25))
    # the row spacing applies to rows: swapping the spacing of a vertical offset changes the answer
    c = np.zeros((3, 3), bool)
    c[2, 0] = True  # two rows below a
    assert assd(a, c, (0.5, 2.0)) == pytest.approx(1.0) and assd(a, c, (2.0, 0.5)) == pytest.approx(4.0)


def test_segmentation_metric_passes_per_axis_spacing_to_the_distances():
    a = np.zeros((8, 8), bool)
    a[2:5, 2:5] = True
    b = np.roll(a, 2, axis=0)  # two rows lower
    m = SegmentationMetric(tau_mm=2.5)
    m.update(a, b, case_id="c", view="coronal", quality="high", spacing_mm=(0.5, 3.0))
    row = m.rows()[0]
    # the tolerance in pixels: 2.5 mm over the geometric mean spacing sqrt(0.5 * 3.0)
    tau_px = 2.5 / math.sqrt(1.5)
    assert row[BOUNDARY_TAU_PX] == pytest.approx(tau_px)
    want = brute_metrics(a, b, tau_px, (0.5, 3.0))
    for key in ("hd95", "assd", "boundary_f1"):
        assert row[key] == pytest.approx(want[key]), key
    assert row["hd95"] == pytest.approx(1.0)  # two rows of 0.5 mm: every boundary pixel is 1 mm off or 0
    assert row["distance_unit"] == "mm"
