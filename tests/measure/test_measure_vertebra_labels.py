"""Vertebra-level measurement from label maps: cleaning rules, end-plate tilts, named curves."""
from __future__ import annotations

import json

import numpy as np
import pytest

from r2mfnet.data.labels import rasterize_labels
from r2mfnet.errors import MeasurementError
from r2mfnet.measure.cobb import cobb_curves_from_landmarks
from r2mfnet.measure.vertebra_labels import clean_labels, draw_labels, fit_vertebra, measure_labels
from tests.measure.synth_spine import bump, make_spine, rotate


def _quad(cx, cy, w, h, upper_deg, lower_deg=None):
    """TL, TR, BL, BR of a vertebra whose upper/lower end plates have the given tilts."""
    lower_deg = upper_deg if lower_deg is None else lower_deg
    mid = np.radians(0.5 * (upper_deg + lower_deg))
    n = np.array([-np.sin(mid), np.cos(mid)])  # down the spine
    out = []
    for deg, off in ((upper_deg, -h / 2), (lower_deg, h / 2)):
        e = np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))])
        c = np.array([cx, cy]) + n * off
        out += [c - e * w / 2, c + e * w / 2]
    return np.array(out)


def _exact_raster(quad, shape):
    """Pixels whose centre lies inside the (convex) quadrilateral: the ideal binary vertebra."""
    ring = quad[[0, 1, 3, 2]]
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = np.ones(shape, bool)
    for i in range(4):
        p, r = ring[i], ring[(i + 1) % 4]
        inside &= (r[0] - p[0]) * (yy - p[1]) - (r[1] - p[1]) * (xx - p[0]) >= 0
    return inside


@pytest.mark.parametrize("angle", [-32.0, -17.3, -6.0, -1.2, -0.4, 0.0, 0.7, 2.5, 8.4, 13.0, 24.0, 35.0])
@pytest.mark.parametrize("offset", [0.0, 0.37])
def test_end_plate_tilt_of_a_rectangle_within_one_degree(angle, offset):
    # 150 x 90 px: a SpineWeb16 vertebra at its original resolution (median end plate 151 px)
    q = _quad(110 + offset, 100 + 0.5 * offset, 150, 90, angle)
    yy, xx = np.nonzero(_exact_raster(q, (210, 220)))
    mid, upper, lower, corners = fit_vertebra(yy, xx, start_deg=0.0)
    for value in (mid, upper, lower):
        assert abs(value - angle) < 1.0
    assert np.abs(corners - q).max() < 1.5  # fitted corners sit on the true ones


@pytest.mark.parametrize("angle", [-32.0, -17.3, -6.0, -2.5, 2.5, 8.4, 13.0, 24.0, 35.0])
def test_small_vertebra_tilt(angle):
    # 48 x 30 px (a 512-px-tall synthetic radiograph): within a degree away from the axes; near
    # 0 degrees a binary outline this short cannot tell 0.4 from 2 degrees (one pixel step over the
    # fitted width), so there the bound is 3 degrees (docs/vertebrae.md)
    q = _quad(70, 60, 48, 30, angle)
    yy, xx = np.nonzero(_exact_raster(q, (130, 140)))
    mid, upper, lower, _ = fit_vertebra(yy, xx)
    assert max(abs(mid - angle), abs(upper - angle), abs(lower - angle)) < 1.0
    for near in (-1.2, -0.4, 0.7):
        q = _quad(70, 60, 48, 30, near)
        yy, xx = np.nonzero(_exact_raster(q, (130, 140)))
        assert abs(fit_vertebra(yy, xx)[0] - near) < 3.0


@pytest.mark.parametrize("upper,lower", [(10.0, 4.0), (-6.0, 3.0), (20.0, 12.0)])
def test_wedged_vertebra_gives_both_end_plates(upper, lower):
    q = _quad(70, 60, 48, 30, upper, lower)
    yy, xx = np.nonzero(_exact_raster(q, (130, 140)))
    mid, up, low, _ = fit_vertebra(yy, xx)
    assert abs(up - upper) < 1.0 and abs(low - lower) < 1.0
    assert abs(mid - 0.5 * (upper + lower)) < 1.0


@pytest.mark.parametrize("angle", [-21.0, -4.0, 7.5, 16.0])
def test_end_plate_tilt_on_the_projects_own_raster(angle):
    # the label painter (OpenCV fixed-point fill) adds its own pixel error; at a real
    # radiograph's vertebra size (80 x 50 px) the fit stays within a degree
    lab = rasterize_labels(_quad(80, 70, 80, 50, angle)[None], (150, 160), ["T6"])
    yy, xx = np.nonzero(lab)
    mid, up, low, _ = fit_vertebra(yy, xx)
    assert max(abs(mid - angle), abs(up - angle), abs(low - angle)) < 1.0


def _crafted():
    lab = np.zeros((120, 40), np.uint8)
    for k in range(1, 8):  # T1..T7, 10-row bodies with 4-row discs
        lab[4 + 14 * (k - 1) : 14 + 14 * (k - 1), 10:30] = k
    return lab


def test_clean_keeps_one_component_per_label():
    lab = _crafted()
    lab[110:113, 2:5] = 3  # a stray second piece of T3
    out, rep = clean_labels(lab)
    assert rep.extra_pieces == {"T3": 9}
    assert (out[110:113, 2:5] == 0).all()  # removed, not re-labelled
    assert np.array_equal(out[:100], lab[:100])
    assert rep.present == ["T1", "T2", "T3", "T4", "T5", "T6", "T7"]


def test_clean_drops_labels_out_of_top_to_bottom_order():
    lab = _crafted()
    t2, t5 = lab == 2, lab == 5
    lab[t2], lab[t5] = 5, 2  # T2 and T5 swapped: rows of labels 1..7 are in order 0,4,2,3,1,5,6
    out, rep = clean_labels(lab)
    # the longest ordered set is T1, T3, T4, T6, T7: both swapped labels go, neither is renamed
    assert rep.dropped == {"T2": "out of top-to-bottom order", "T5": "out of top-to-bottom order"}
    assert rep.present == ["T1", "T3", "T4", "T6", "T7"] and {"T2", "T5"} <= set(rep.missing)
    assert not np.isin(out, [2, 5]).any()
    # adjacent swap: two equally long ordered sets; the one with more vertebra area wins
    lab = _crafted()
    t3, t4 = lab == 3, lab == 4
    lab[t3], lab[t4] = 4, 3
    lab[np.nonzero(t4)[0].min() - 1, 10:30] = 3  # the (new) T3 is one row larger
    out, rep = clean_labels(lab)
    assert rep.dropped == {"T4": "out of top-to-bottom order"}


def test_clean_drops_specks_and_reports_missing_without_inventing():
    lab = _crafted()
    lab[lab == 4] = 0  # T4 missing
    lab[lab == 6] = 0
    lab[75, 20] = 6  # T6 reduced to a speck
    out, rep = clean_labels(lab)
    assert "T6" in rep.dropped and rep.dropped["T6"].startswith("too small")
    assert rep.missing == ["T4", "T6", *[f"T{i}" for i in range(8, 13)], "L1", "L2", "L3", "L4", "L5"]
    assert not (out == 4).any() and not (out == 6).any()  # the gap stays a gap


def test_bad_label_maps_are_refused():
    with pytest.raises(MeasurementError, match="0..17"):
        clean_labels(np.full((4, 4), 18, np.uint8))
    with pytest.raises(MeasurementError, match="integers"):
        clean_labels(np.zeros((4, 4), np.float32))
    with pytest.raises(MeasurementError, match="fewer than two"):
        measure_labels(np.zeros((20, 20), np.uint8))


SHAPES = {
    "C": bump(0.12, 0.5, 0.3),
    "S": lambda t: 0.08 * np.sin(2 * np.pi * t),
    "C mid-spine": bump(0.1, 0.45, 0.2),
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("degrees", [0.0, -7.0])
def test_curves_named_like_the_landmark_reference(shape, degrees):
    # spine 1200 px tall (vertebrae 35-90 px wide, a radiograph at its original size)
    spine = make_spine(SHAPES[shape], height=1200.0)
    if degrees:
        spine = rotate(spine, degrees)
    m = measure_labels(rasterize_labels(spine.corners, spine.mask.shape))
    ref = cobb_curves_from_landmarks(spine.corners)
    assert [(c["upper"], c["lower"], c["apex"]) for c in m.curves] == [
        (c.upper_level, c.lower_level, c.apex_level) for c in ref.curves
    ]
    for got, want in zip(m.curves, ref.curves):
        assert abs(got["angle_deg"] - want.angle_deg) < 1.0  # rectangles: end plates = mid-lines
        assert abs(got["midline_angle_deg"] - want.angle_deg) < 1.0
    assert abs(m.tilt_range - ref.tilt_range) < 1.0
    d = json.loads(json.dumps(m.to_dict()))
    assert set(d["curves"][0]) >= {"upper", "lower", "apex", "angle_deg"}
    assert d["labels"]["missing"] == []


def test_missing_vertebra_is_reported_and_never_an_end_or_apex():
    spine = make_spine(SHAPES["C"], height=1200.0)
    lab = rasterize_labels(spine.corners, spine.mask.shape)
    lab[lab == 7] = 0  # T7 is an end vertebra of the main curve in the reference
    m = measure_labels(lab)
    assert m.report.missing == ["T7"]
    named = {c[k] for c in m.curves for k in ("upper", "lower", "apex")}
    assert "T7" not in named
    assert [v.level for v in m.vertebrae] == [n for n in m.report.present]
    assert len(m.vertebrae) == 16


def test_picture_has_the_image_size_and_draws_something():
    spine = make_spine(SHAPES["S"], height=400.0)
    lab = rasterize_labels(spine.corners, spine.mask.shape)
    m = measure_labels(lab)
    image = np.full(lab.shape, 0.3, np.float32)
    pic = draw_labels(image, lab, m, title="case 1")
    assert pic.shape == (*lab.shape, 3) and pic.dtype == np.uint8
    assert (pic != pic[..., :1]).any()  # coloured labels and lines


def test_piece_far_off_its_neighbours_is_dropped_not_measured():
    spine = make_spine(SHAPES["C"], height=1200.0)
    corners = spine.corners.copy()
    c = corners[9].mean(axis=0)  # T10 turned by 45 degrees about its centre
    r = np.radians(45.0)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    corners[9] = (corners[9] - c) @ rot.T + c
    m = measure_labels(rasterize_labels(corners, spine.mask.shape))
    assert "T10" in m.report.missing and m.report.dropped["T10"].startswith("not a vertebral body")
    assert "T10" not in {c[k] for c in m.curves for k in ("upper", "lower", "apex")}


def test_sheared_vertebra_keeps_end_plates_apart_from_sides():
    # a parallelogram: plates at 12 deg, sides strongly slanted (as in many expert labels)
    tl, tr = np.array([60.0, 60.0]), np.array([60.0 + 150 * np.cos(np.radians(12)), 60 + 150 * np.sin(np.radians(12))])
    shear = np.array([45.0, 85.0])
    q = np.array([tl, tr, tl + shear, tr + shear])
    yy, xx = np.nonzero(_exact_raster(q, (260, 300)))
    mid, up, low, _ = fit_vertebra(yy, xx, start_deg=12.0)
    assert abs(up - 12.0) < 1.0 and abs(low - 12.0) < 1.0 and abs(mid - 12.0) < 1.0
