"""Synthetic spine masks with known geometry for the measurement tests.

A spine is a chain of 17 rectangles (vertebral bodies, T1..L5) whose centres lie on a curve
``x = x0 + f(y)`` and whose end plates are perpendicular to the curve's tangent, with gaps (discs)
between them. Segment heights follow the typical proportions of ``r2mfnet.measure.levels``. The
rectangles' corners are returned too, so the known Cobb angle is the landmark reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from r2mfnet.measure.levels import level_boundaries


@dataclass
class SynthSpine:
    mask: np.ndarray  # bool (H, W)
    corners: np.ndarray  # (17, 4, 2) TL, TR, BL, BR


def make_spine(
    g: Callable[[np.ndarray], np.ndarray] = lambda t: 0.0 * t,
    height: float = 420.0,
    margin: float = 50.0,
    body_fraction: float = 0.78,
    width_ratio: float = 1.7,
) -> SynthSpine:
    """Spine of ``height`` pixels whose centre line is ``x = x0 + height * g(t)``.

    ``t = (y - top) / height`` runs from 0 (top of T1) to 1 (bottom of L5); so the tangent's slope
    is ``g'(t)`` whatever the size, and the same ``g`` gives the same angles at any scale.
    """
    top, bottom = margin, margin + height
    shape = (int(round(height + 2 * margin)), int(round(0.75 * height)))
    x0 = shape[1] / 2
    f = lambda y: height * g((np.asarray(y, dtype=np.float64) - top) / height)  # noqa: E731
    b = top + level_boundaries() * (bottom - top)
    mask = np.zeros(shape, np.uint8)
    corners = np.zeros((17, 4, 2))
    eps = 1e-3
    for i in range(17):
        h = (b[i + 1] - b[i]) * body_fraction
        yc = b[i] + h / 2
        xc = x0 + float(f(yc))
        slope = (float(f(yc + eps)) - float(f(yc - eps))) / (2 * eps)
        th = np.arctan(slope)
        t = np.array([np.sin(th), np.cos(th)])  # along the spine (down)
        e = np.array([np.cos(th), -np.sin(th)])  # along the end plate (right)
        c = np.array([xc, yc])
        w = width_ratio * h
        tl, tr = c - w / 2 * e - h / 2 * t, c + w / 2 * e - h / 2 * t
        bl, br = c - w / 2 * e + h / 2 * t, c + w / 2 * e + h / 2 * t
        corners[i] = [tl, tr, bl, br]
        poly = np.round(np.array([tl, tr, br, bl]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1, lineType=cv2.LINE_8, shift=4)
    return SynthSpine(mask.astype(bool), corners)


def rotate(spine: SynthSpine, degrees: float) -> SynthSpine:
    """Rotate mask and landmarks together about the image centre (positive = anticlockwise)."""
    h, w = spine.mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    mask = cv2.warpAffine(spine.mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    pts = spine.corners.reshape(-1, 2)
    pts = pts @ m[:, :2].T + m[:, 2]
    return SynthSpine(mask.astype(bool), pts.reshape(17, 4, 2))


def bump(amplitude: float, centre: float, width: float) -> Callable[[np.ndarray], np.ndarray]:
    """Gaussian bump of ``g`` (all in units of the spine height)."""
    return lambda t: amplitude * np.exp(-(((t - centre) / width) ** 2))


def box_corners(cx: float, cy: float, w: float, h: float, tilt_deg: float) -> np.ndarray:
    """Corners TL, TR, BL, BR ``(4, 2)`` of a ``w`` x ``h`` rectangle centred at ``(cx, cy)`` and
    turned by ``tilt_deg`` (positive: right end lower, as the landmark tilts)."""
    r = np.radians(tilt_deg)
    along, down = np.array([np.cos(r), np.sin(r)]), np.array([-np.sin(r), np.cos(r)])
    c = np.array([cx, cy])
    return np.array([c - along * w / 2 - down * h / 2, c + along * w / 2 - down * h / 2,
                     c - along * w / 2 + down * h / 2, c + along * w / 2 + down * h / 2])


def merged_lower_spine() -> tuple[SynthSpine, np.ndarray]:
    """A strongly curved spine whose lower eight vertebrae are merged into two curved blocks
    (their discs filled), as masks of a lumbar curve often are: the chain grown from the largest
    block extrapolates the line through the two blocks' centroids, which points away from the
    separate thoracic vertebrae above."""
    s = make_spine(bump(0.2, 0.6, 0.2), height=400)
    m = s.mask.astype(np.uint8)
    for i0, i1 in ((9, 13), (13, 17)):
        for i in range(i0, i1 - 1):
            disc = np.array([s.corners[i, 2], s.corners[i, 3], s.corners[i + 1, 1], s.corners[i + 1, 0]])
            cv2.fillPoly(m, [np.round(disc).astype(np.int32)], 1)
    return s, m.astype(bool)
