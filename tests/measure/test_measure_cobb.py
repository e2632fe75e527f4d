"""Cobb angles from synthetic masks with known geometry, against the landmark reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from r2mfnet.errors import MeasurementError
from r2mfnet.measure import (
    cobb_curves_from_landmarks,
    cobb_from_landmarks,
    cobb_from_mask,
    extract_centreline,
    select_chain,
    tilt_extrema,
)
from r2mfnet.measure.levels import fraction_to_level_position, level_boundaries, level_name

from tests.measure.synth_spine import bump, make_spine, merged_lower_spine, rotate

TOL_DEG = 3.0

SHAPES = {
    # C curve whose end vertebrae are T1 and L5 (tangent angles +-atan(0.143 pi) = +-24.2 deg).
    "C_ends": lambda t: 0.143 * np.sin(np.pi * t),
    # C curve in the middle with two compensatory curves above and below.
    "C_mid": bump(0.12, 0.5, 0.214),
    # S curve: thoracic convex right, lumbar convex left.
    "S": lambda t: 0.083 * np.sin(2 * np.pi * t),
}


def _regional(r):
    return np.array([r.main_angle, r.pt_angle, r.mt_angle, r.tl_angle])


# ------------------------------------------------------------------------ straight spine
@pytest.mark.parametrize("rot", [0, 4, -7])
def test_straight_spine_measures_about_zero(rot):
    s = rotate(make_spine(height=400), rot)
    cl, r = cobb_from_mask(s.mask)
    assert r.curves == []
    assert r.main_angle < TOL_DEG
    assert r.pt_angle == r.mt_angle == r.tl_angle == 0.0
    # The tilt of the whole spine is the rotation (image rotation anticlockwise = tilt negative).
    assert float(np.median(cl.tilt_deg)) == pytest.approx(-rot, abs=1.0)


# ------------------------------------------------------------------------ curved spines
@pytest.mark.parametrize("rot", [0, 5, -7])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_curves_match_landmark_reference_within_3_deg(shape, rot):
    s = rotate(make_spine(SHAPES[shape], height=400), rot)
    ref = cobb_curves_from_landmarks(s.corners)
    _, r = cobb_from_mask(s.mask)
    assert ref.main_angle == pytest.approx(cobb_from_landmarks(s.corners)[0])
    err = np.abs(_regional(r) - _regional(ref))
    assert err.max() <= TOL_DEG, (shape, rot, _regional(r), _regional(ref))
    # Same curves, same regions and sides.
    assert [c.region for c in r.curves] == [c.region for c in ref.curves]
    assert [c.side for c in r.curves] == [c.side for c in ref.curves]


def test_c_curve_against_analytic_tangent_angles():
    # x = x0 + H * 0.143 sin(pi t): end plates perpendicular to the tangent, whose angle at the
    # ends is atan(0.143 pi); the Cobb angle between T1 and L5 is about twice that.
    s = make_spine(SHAPES["C_ends"], height=400)
    _, r = cobb_from_mask(s.mask)
    analytic = 2 * math.degrees(math.atan(0.143 * math.pi))
    assert r.main_angle == pytest.approx(analytic, abs=TOL_DEG)
    (curve,) = r.curves
    assert curve.side == "right" and curve.region == "MT"
    assert curve.upper_level == "T1" and curve.lower_level == "L5"
    assert curve.upper_y < curve.apex_y < curve.lower_y


def test_s_curve_regions_and_apices():
    s = make_spine(SHAPES["S"], height=400)
    _, r = cobb_from_mask(s.mask)
    assert [c.region for c in r.curves] == ["MT", "TL"]
    assert [c.side for c in r.curves] == ["right", "left"]
    assert r.curves[0].apex_level in ("T5", "T6", "T7")
    assert r.curves[1].apex_level in ("L1", "L2", "L3")
    assert r.pt_angle == 0.0 and r.mt_angle > 45 and r.tl_angle > 45
    assert r.main_curve is not None and r.main_curve.angle_deg == r.main_angle


def test_rotation_leaves_cobb_unchanged():
    base = _regional(cobb_from_mask(make_spine(SHAPES["S"], height=400).mask)[1])
    for rot in (3, -6):
        s = rotate(make_spine(SHAPES["S"], height=400), rot)
        assert np.abs(_regional(cobb_from_mask(s.mask)[1]) - base).max() < 2.0


def test_small_spurious_blobs_do_not_change_the_result():
    s = make_spine(SHAPES["S"], height=400)
    cl0, r0 = cobb_from_mask(s.mask)
    m = s.mask.copy()
    rng = np.random.default_rng(0)
    h, w = m.shape
    for _ in range(15):
        y, x, k = rng.integers(0, h - 8), rng.integers(0, w - 8), rng.integers(2, 7)
        m[y : y + k, x : x + k] = True
    m[30:36, 147:153] = True  # a speck just above T1, on the spine's line
    m[462:468, 147:153] = True  # and one just below L5
    m[200:225, 8:26] = True  # a larger false positive off to the side
    cl1, r1 = cobb_from_mask(m)
    assert np.abs(_regional(r1) - _regional(r0)).max() < 0.5
    assert cl1.top == pytest.approx(cl0.top, abs=1)
    assert cl1.bottom == pytest.approx(cl0.bottom, abs=1)
    assert cl1.n_dropped > cl0.n_dropped


# ------------------------------------------------------------------------ unmeasurable masks
def test_empty_short_and_broken_masks_raise_clear_errors():
    s = make_spine(SHAPES["S"], height=400)
    h, w = s.mask.shape
    with pytest.raises(MeasurementError, match="empty"):
        cobb_from_mask(np.zeros((h, w), bool))
    speck = np.zeros((h, w), bool)
    speck[100:110, 100:110] = True
    with pytest.raises(MeasurementError, match="too short"):
        cobb_from_mask(speck)
    halves = np.concatenate([s.mask[: h // 2], np.roll(s.mask[h // 2 :], 120, axis=1)])
    with pytest.raises(MeasurementError, match="broken"):
        cobb_from_mask(halves)
    rows = np.arange(h)[:, None]
    gap = np.where((rows > 150) & (rows < 330), False, s.mask)
    with pytest.raises(MeasurementError, match="broken"):
        cobb_from_mask(gap)
    with pytest.raises(MeasurementError, match="2-D"):
        extract_centreline(np.ones((3, 40, 40), bool))


def test_chain_is_rebuilt_as_the_heaviest_path_when_growing_from_the_largest_part_fails():
    s, m = merged_lower_spine()
    grown, info_grown = select_chain(m, min_chain_fraction=0.0)  # 0: never rebuilt
    assert not info_grown["rebuilt"] and info_grown["chain_fraction"] < 0.75
    chain, info = select_chain(m)
    assert info["rebuilt"] and info["chain_fraction"] == pytest.approx(1.0)
    assert info["n_components"] == 9 + 2  # nine separate vertebrae and the two blocks
    cl = extract_centreline(m)  # measurable now: the whole spine, T1 to L5
    assert cl.top == pytest.approx(s.corners[0, :2, 1].min(), abs=4)
    assert cl.bottom == pytest.approx(s.corners[16, 2:, 1].max(), abs=4)
    # A clean spine keeps the chain grown from the largest part (the fallback never runs).
    assert not select_chain(make_spine(SHAPES["S"], height=400).mask)[1]["rebuilt"]


# ------------------------------------------------------------------------ reference, helpers
def test_landmark_reference_curves_and_levels():
    s = make_spine(SHAPES["S"], height=400)
    ref = cobb_curves_from_landmarks(s.corners)
    assert len(ref.curves) == 2 and ref.source == "landmarks"
    assert ref.curves[0].upper_level == "T1" and ref.curves[-1].lower_level == "L5"
    assert ref.curves[0].lower_level == ref.curves[1].upper_level  # shared end vertebra
    assert ref.main_angle == pytest.approx(cobb_from_landmarks(s.corners)[0])
    with pytest.raises(MeasurementError):
        cobb_curves_from_landmarks(s.corners[:10])  # 10 vertebrae need their names
    sub = cobb_curves_from_landmarks(s.corners[5:12], levels=[f"T{i}" for i in range(6, 13)])
    assert sub.profile_pos[0] == pytest.approx(5.5)


def test_tilt_extrema_hysteresis_by_hand():
    t = [0, -1, 5, 12, 11, 13, 2, -8, -7, -9, 0.5]
    # Start: minimum -1 (index 1) before the first rise of >= 5; then max 13 (5); then min -9
    # (9); the final rise to 0.5 is 9.5 >= 5, so the last sample (10) is an extremum too.
    assert tilt_extrema(t, 5.0) == [1, 5, 9, 10]
    assert tilt_extrema(t, 10.0) == [1, 5, 9]
    assert tilt_extrema([0, 1, 2, 1], 5.0) == []


def test_level_mapping():
    b = level_boundaries()
    assert b[0] == 0 and b[-1] == 1 and np.all(np.diff(b) > 0)
    assert np.diff(b)[-5:-1].mean() > 1.5 * np.diff(b)[:4].mean()  # lumbar taller
    assert fraction_to_level_position(0.0) == 0 and fraction_to_level_position(1.0) == 17
    assert level_name(fraction_to_level_position(0.999)) == "L5"
    assert np.allclose(level_boundaries("even"), np.linspace(0, 1, 18))
    with pytest.raises(ValueError):
        level_boundaries([1.0] * 3)
