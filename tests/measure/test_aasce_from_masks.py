"""The three ``angles.csv`` angles measured from masks, on hand-built spines of known tilts.

Each spine is 17 rectangles (T1..L5) drawn with cv2, the i-th turned by a tilt chosen here; the
rectangles' centres follow the spine direction those tilts imply (perpendicular to each end
plate), with discs between them. So the AASCE rule (:mod:`r2mfnet.measure.aasce`) on the drawn
tilts gives the three angles by hand, in two of its branches: not S-shaped (angles 2 and 3 from
the first and last vertebra) and S-shaped with the main curve's ends in the upper half of the
image (the curves above and below it). The mask measurement must find the same three angles.
(The third branch, S-shaped lower down, is covered on tilt profiles in
``tests/measure/test_measure_eval.py::test_aasce_rule_branches``; a drawn spine for it is still
to be found: the first try was not S-shaped by the rule's own test.)

Tolerance, per angle: each angle is the difference of two end-plate tilts fitted on rectangles
at least 42 px wide (T1, the narrowest: 1.6 x 78 % of its level's share of 800 px); a rasterised
straight edge is a staircase whose fitted line is within about half a pixel over the fitted core
(60 % of the width, >= 25 px), i.e. atan(0.5 / 25) ~ 1.1 deg at the very worst per plate, and
the mid-line averages two plates whose errors are largely independent. 1.5 deg per angle is
therefore loose; a wrong branch of the rule or a wrong vertebra changes an angle by >= 8 deg in
every case below.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from r2mfnet.geometry import vertebra_tilts_deg
from r2mfnet.measure.aasce import aasce_angles_from_landmarks, is_s_shaped
from r2mfnet.measure.angle_stats import measure_triple
from r2mfnet.measure.levels import level_boundaries

TOLERANCE_DEG = 1.5


def _profile(knots: dict[int, float]) -> np.ndarray:
    """17 tilts (degrees) linear between the given (vertebra index: tilt) knots."""
    idx = sorted(knots)
    return np.interp(np.arange(17), idx, [knots[i] for i in idx])


def draw_spine(tilts_deg: np.ndarray, top: float, height: float = 800.0, image_height: int | None = None,
               body_fraction: float = 0.78, width_ratio: float = 1.6) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, corners (17, 4, 2) TL, TR, BL, BR)`` of a spine of rectangles with these tilts.

    Tilt ``t`` (positive: right end lower, image y down) turns the mid-line to ``(cos t, sin t)``
    and the spine's direction to ``(-sin t, cos t)``; a centre is the previous one moved along
    the mean direction of the two vertebrae, so each rectangle's end plates are perpendicular to
    the spine where it sits.
    """
    t = np.radians(np.asarray(tilts_deg, dtype=np.float64))
    b = top + level_boundaries() * height
    heights = (b[1:] - b[:-1]) * body_fraction
    centres_y = b[:-1] + heights / 2
    width = int(1.2 * height)
    xs = [width / 2.0]
    for i in range(1, 17):
        mean = (t[i - 1] + t[i]) / 2
        xs.append(xs[-1] - np.tan(mean) * (centres_y[i] - centres_y[i - 1]))
    shape = (int(image_height or round(top + height + 60)), width)
    mask = np.zeros(shape, np.uint8)
    corners = np.zeros((17, 4, 2))
    for i in range(17):
        e = np.array([np.cos(t[i]), np.sin(t[i])])  # along the end plate (right)
        d = np.array([-np.sin(t[i]), np.cos(t[i])])  # along the spine (down)
        c = np.array([xs[i], centres_y[i]])
        h, w = heights[i], width_ratio * heights[i]
        tl, tr = c - w / 2 * e - h / 2 * d, c + w / 2 * e - h / 2 * d
        bl, br = c - w / 2 * e + h / 2 * d, c + w / 2 * e + h / 2 * d
        corners[i] = [tl, tr, bl, br]
        cv2.fillPoly(mask, [np.round(np.array([tl, tr, br, bl]) * 16).astype(np.int32)], 1,
                     lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool), corners


def _s_points(corners: np.ndarray) -> np.ndarray:
    top_mid = (corners[:, 0] + corners[:, 1]) / 2
    bottom_mid = (corners[:, 2] + corners[:, 3]) / 2
    return np.stack([top_mid, bottom_mid], 1).reshape(-1, 2)


# (tilt knots, top margin, image height or None, S-shaped?, the three angles by hand)
CASES = {
    # not S: a single long curve, 8 deg at T4 to -22 deg at T12, easing to -12 at L5.
    # angle 1 = 8 - (-22) = 30 (T4, T12); 2 = |T1 - T4| = |0 - 8| = 8; 3 = |L5 - T12| = 10
    "not_s": ({0: 0.0, 3: 8.0, 11: -22.0, 16: -12.0}, 40.0, None, False, (30.0, 8.0, 10.0)),
    # S, ends high: +15 at T5, -15 at T12, +5 at L5; the two ends' bottom rows (~270 + ~590 px)
    # sum to less than the 1400 px image height. angle 1 = 30 (T5, T12);
    # 2 = largest above T5 = |15 - 0| = 15; 3 = largest below T12 = |-15 - 5| = 20
    "s_upper": ({0: 0.0, 4: 15.0, 11: -15.0, 16: 5.0}, 40.0, 1400, True, (30.0, 15.0, 20.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_aasce_angles_from_a_mask_of_known_tilts(name):
    knots, top, image_height, s_shaped, expected = CASES[name]
    tilts = _profile(knots)
    mask, corners = draw_spine(tilts, top, image_height=image_height)
    # the construction: the drawn corners carry the chosen tilts, and the rule on them gives the
    # hand values exactly (so the case is in the intended branch of the rule)
    assert vertebra_tilts_deg(corners) == pytest.approx(tilts, abs=1e-9)
    assert is_s_shaped(_s_points(corners)) is s_shaped
    assert aasce_angles_from_landmarks(corners, mask.shape[0]) == pytest.approx(expected, abs=1e-9)
    # 17 separate rectangles, as a mask with discs between its vertebrae shows them
    from scipy import ndimage

    assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 17
    triple, error = measure_triple(mask, "vertebrae")
    assert error is None, error
    assert triple == pytest.approx(list(expected), abs=TOLERANCE_DEG), (name, triple)
