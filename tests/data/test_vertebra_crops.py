"""Level crops of one vertebra (r2mfnet.data.vertebra_crops): geometry against hand-made cases."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from r2mfnet.data.vertebra_crops import (SIDE_PER_WIDTH, CropFrame, Jitter, extract_crop, flip_crop,
                                         jittered_frames, midline_tilt_uv, vertebra_frames)
from r2mfnet.geometry import vertebra_tilts_deg
from tests.measure.synth_spine import box_corners


def test_frame_maps_points_both_ways_and_its_corners_to_plus_minus_one():
    f = CropFrame(150.0, 100.0, 0.0, 150.0)
    pts = np.array([[75.0, 25.0], [225.0, 175.0], [150.0, 100.0]])
    np.testing.assert_allclose(f.to_crop(pts), [[-1, -1], [1, 1], [0, 0]])
    turned = CropFrame(150.0, 100.0, 30.0, 150.0)
    np.testing.assert_allclose(turned.to_image(turned.to_crop(pts)), pts)
    # a point one half-side to the right along a 30-degree turn is crop (1, 0)
    r = np.radians(30.0)
    np.testing.assert_allclose(turned.to_crop(np.array([150 + 75 * np.cos(r), 100 + 75 * np.sin(r)])), [1, 0],
                               atol=1e-12)


def test_a_tilted_box_cut_in_its_own_frame_lies_level_and_where_to_crop_says():
    img = np.zeros((300, 300), np.uint8)
    quad = box_corners(150, 140, 100, 40, 25.0)
    cv2.fillPoly(img, [quad[[0, 1, 3, 2]].round().astype(np.int32)], 255)
    frame = vertebra_frames(quad[None])[0]
    assert frame.tilt_deg == pytest.approx(25.0)
    assert frame.side == pytest.approx(SIDE_PER_WIDTH * 100)
    crop = extract_crop(img, frame, 64)
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    assert abs(float(crop.mean())) < 1e-4 and float(crop.std()) == pytest.approx(1.0, abs=1e-3)
    bright = crop > 0
    rows, cols = np.nonzero(bright)
    # level: the box's top and bottom rows span its width; expected from to_crop of its corners
    uv = frame.to_crop(quad)
    px = (uv + 1) * 32 - 0.5
    assert rows.min() == pytest.approx(px[:, 1].min(), abs=1.0) and rows.max() == pytest.approx(px[:, 1].max(), abs=1.0)
    assert cols.min() == pytest.approx(px[:, 0].min(), abs=1.0) and cols.max() == pytest.approx(px[:, 0].max(), abs=1.0)
    assert midline_tilt_uv(uv) == pytest.approx(0.0, abs=1e-9)
    # the same box cut in an unturned frame shows the tilt again, as the crop's own coordinates
    level = CropFrame(frame.x, frame.y, 0.0, frame.side)
    assert midline_tilt_uv(level.to_crop(quad)) == pytest.approx(25.0)


def test_frames_follow_the_landmark_tilts_and_a_colour_image_is_cut_like_its_grey():
    quads = np.stack([box_corners(100, 60 + 50 * i, 80, 30, t) for i, t in enumerate((-10.0, 0.0, 12.0))])
    frames = vertebra_frames(quads)
    np.testing.assert_allclose([f.tilt_deg for f in frames], vertebra_tilts_deg(quads))
    grey = (np.random.default_rng(0).random((220, 200)) * 255).astype(np.uint8)
    colour = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_allclose(extract_crop(colour, frames[1]), extract_crop(grey, frames[1]), atol=1e-4)


def test_flip_mirrors_the_crop_renames_the_corners_and_negates_the_tilt():
    crop = np.arange(16, dtype=np.float32).reshape(4, 4)
    quad = box_corners(0.1, 0.05, 1.0, 0.4, 8.0)
    flipped, uv = flip_crop(crop, quad)
    np.testing.assert_array_equal(flipped, crop[:, ::-1])
    assert midline_tilt_uv(uv) == pytest.approx(-8.0)
    assert uv[0, 0] < uv[1, 0] and uv[0, 1] < uv[2, 1]  # still TL, TR, BL, BR
    again, back = flip_crop(flipped, uv)
    np.testing.assert_array_equal(again, crop)
    np.testing.assert_allclose(back, quad)


def test_jitter_moves_turns_and_sizes_frames_by_about_its_spread():
    frames = vertebra_frames(box_corners(500, 500, 100, 40, 5.0)[None]) * 4000
    out = jittered_frames(frames, np.random.default_rng(0), Jitter(shift_across=0.1, shift_along=0.0,
                                                                   turn_deg=4.0, size=(0.9, 1.1)))
    turns = np.array([f.tilt_deg for f in out]) - 5.0
    assert np.std(turns) == pytest.approx(4.0, rel=0.1)
    shifts = np.array([[f.x - 500, f.y - 500] for f in out])
    along = np.array([np.cos(np.radians(5.0)), np.sin(np.radians(5.0))])
    assert np.std(shifts @ along) == pytest.approx(10.0, rel=0.1)  # 0.1 of the 100 px width
    sides = np.array([f.side for f in out]) / frames[0].side
    assert 0.9 <= sides.min() and sides.max() <= 1.1
