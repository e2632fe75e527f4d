"""The end-plate tilt method (r2mfnet.measure.vertebrae) on masks with known vertebra tilts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from r2mfnet.errors import MeasurementError
from r2mfnet.measure.case import measure_view
from r2mfnet.measure.landmarks import cobb_from_landmarks, vertebra_tilts_deg
from r2mfnet.measure.vertebrae import cobb_from_mask_vertebrae, vertebra_tilts


def column(tilts_deg, width=90.0, height=45.0, gap=14.0, x0=200.0, top=60.0, shape=(1100, 400)):
    """A straight column of rectangles, each turned by its own tilt (not perpendicular to the
    column's axis, as real wedged and rotated vertebrae are not); returns (mask, corners)."""
    mask = np.zeros(shape, np.uint8)
    corners = []
    y = top + height / 2
    for t in tilts_deg:
        a = np.radians(t)
        u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        c = np.array([x0, y])
        tl, tr = c - u * width / 2 - v * height / 2, c + u * width / 2 - v * height / 2
        bl, br = c - u * width / 2 + v * height / 2, c + u * width / 2 + v * height / 2
        cv2.fillPoly(mask, [np.round(np.array([tl, tr, br, bl]) * 16).astype(np.int32)], 1,
                     shift=4)
        corners.append([tl, tr, bl, br])
        y += height + gap
    return mask.astype(bool), np.array(corners)


def test_end_plates_follow_the_vertebrae_where_the_centreline_cannot():
    tilts = [0, 2, 5, 9, 12, 14, 12, 8, 3, -2, -7, -11, -13, -12, -8, -4, -1]  # an S of tilts
    mask, corners = column(tilts)
    _, vts = vertebra_tilts(mask)
    assert len(vts) == 17 and all(v.source == "shape" for v in vts)
    got = np.array([v.tilt_deg for v in vts])
    assert np.abs(got - vertebra_tilts_deg(corners)).max() < 1.0
    ref = cobb_from_landmarks(corners)[0]  # 27 deg between T6 and L1
    _, cobb = cobb_from_mask_vertebrae(mask)
    assert cobb.source == "mask_vertebrae" and cobb.tilt_range == pytest.approx(ref, abs=1.0)
    # The column is straight, so the centreline (perpendicular) method sees almost nothing.
    assert measure_view("coronal", mask, method="centreline").cobb.tilt_range < 8.0
    assert measure_view("coronal", mask, method="vertebrae").cobb.tilt_range == pytest.approx(ref, abs=1.0)


def test_touching_vertebrae_are_cut_at_the_neck():
    tilts = [0, 0, 0, 0, 0, 0, 0, 0, 10, -10, 0, 0, 0, 0, 0, 0, 0]
    mask, corners = column(tilts, gap=14.0)
    # Join vertebrae 9 and 10 by a thin bridge: one part, two vertebrae with a neck between them.
    mid = int((corners[8][2][1] + corners[9][0][1]) / 2)
    mask[mid - 8 : mid + 8, 195:205] = True
    _, vts = vertebra_tilts(mask)
    got = sorted(v.tilt_deg for v in vts)
    assert len(vts) == 17
    assert got[0] == pytest.approx(-10, abs=1.5) and got[-1] == pytest.approx(10, abs=1.5)


def test_a_blob_is_not_measured_as_vertebrae():
    mask = np.zeros((600, 300), bool)
    cv2.ellipse(mask.view(np.uint8), (150, 300), (40, 250), 0, 0, 360, 1, -1)
    with pytest.raises(MeasurementError):
        cobb_from_mask_vertebrae(np.zeros((100, 100), bool))
    # One merged part: no vertebra can be fitted, the centreline's tilt is used instead.
    _, vts = vertebra_tilts(mask)
    assert vts and all(v.source == "centreline" for v in vts)


def test_min_rect_tilt_fit_reads_known_tilts():
    tilts = [0, 2, 5, 9, 12, 14, 12, 8, 3, -2, -7, -11, -13, -12, -8, -4, -1]
    mask, corners = column(tilts)
    _, plates = vertebra_tilts(mask, tilt_fit="end_plates")
    _, rects = vertebra_tilts(mask, tilt_fit="min_rect")
    assert len(rects) == 17 and all(v.source == "shape" for v in rects)
    truth = vertebra_tilts_deg(corners)
    assert np.abs(np.array([v.tilt_deg for v in rects]) - truth).max() < 1.0
    # the same pieces, the same heights (the merged-vertebra test): only the tilt is read otherwise
    assert [round(v.extent, 6) for v in rects] == [round(v.extent, 6) for v in plates]
    with pytest.raises(ValueError, match="tilt_fit"):
        vertebra_tilts(mask, tilt_fit="corners")


def test_min_rect_reads_a_wedge_along_one_end_plate():
    # one wedge: upper end plate tilted +10 deg, lower end plate level
    from r2mfnet.measure.vertebrae import min_rect_tilt

    mask = np.zeros((200, 300), np.uint8)
    quad = np.array([[100, 80], [200, 80 + 100 * np.tan(np.radians(10))], [200, 130], [100, 130]])
    cv2.fillPoly(mask, [np.round(quad * 16).astype(np.int32)], 1, shift=4)
    ys, xs = np.nonzero(mask)
    tilt = min_rect_tilt(ys.astype(float), xs.astype(float), 0.0)
    assert min(abs(tilt), abs(tilt - 10.0)) < 1.0
