"""Small raster helpers on float32 layers (OpenCV with sub-pixel vertex precision).

OpenCV's drawing functions *set* pixels; the renderer accumulates density, so every anatomical
structure is drawn into its own layer (or a scratch layer) and added with a weight.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

SHIFT = 4  # fixed-point bits for vertex coordinates: 1/16 pixel precision
_SCALE = 1 << SHIFT


def fixed(points: np.ndarray) -> np.ndarray:
    """Float (x, y) points -> OpenCV fixed-point int32 polygon (pixel centres at integers)."""
    return np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2) * _SCALE).astype(np.int32)


def fill(layer: np.ndarray, polygons: list[np.ndarray], value: float = 1.0) -> np.ndarray:
    """Fill polygons (each (N, 2) float points) with ``value``."""
    if polygons:
        cv2.fillPoly(layer, [fixed(p) for p in polygons], float(value), lineType=cv2.LINE_8,
                     shift=SHIFT)
    return layer


def stroke(layer: np.ndarray, points: np.ndarray, thickness_px: float, value: float = 1.0,
           closed: bool = False) -> np.ndarray:
    """Draw a polyline of (rounded, at least 1 px) thickness."""
    cv2.polylines(layer, [fixed(points)], closed, float(value),
                  thickness=max(1, int(round(thickness_px))), lineType=cv2.LINE_8, shift=SHIFT)
    return layer


def ellipse(layer: np.ndarray, centre, axes, angle_deg: float, value: float = 1.0,
            thickness_px: float = -1) -> np.ndarray:
    """Filled (thickness < 0) or outlined ellipse with sub-pixel centre and axes."""
    c = tuple(int(v) for v in np.round(np.asarray(centre, dtype=np.float64) * _SCALE))
    a = tuple(max(1, int(v)) for v in np.round(np.asarray(axes, dtype=np.float64) * _SCALE))
    t = -1 if thickness_px < 0 else max(1, int(round(thickness_px)))
    cv2.ellipse(layer, c, a, float(angle_deg), 0, 360, float(value), t, cv2.LINE_8, SHIFT)
    return layer


def band(points: np.ndarray, half_width: np.ndarray | float) -> np.ndarray:
    """Polygon of a ribbon of (possibly varying) half-width around a polyline."""
    p = np.asarray(points, dtype=np.float64)
    d = np.empty_like(p)
    d[1:-1] = p[2:] - p[:-2]
    d[0] = p[1] - p[0]
    d[-1] = p[-1] - p[-2]
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    hw = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (len(p),))[:, None]
    return np.concatenate([p + n * hw, (p - n * hw)[::-1]], axis=0)


def bezier(control: np.ndarray, n: int = 24) -> np.ndarray:
    """Points along a Bezier curve of any degree (de Casteljau), used for ribs and clavicles."""
    c = np.asarray(control, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    pts = np.broadcast_to(c, (n,) + c.shape).copy()
    while pts.shape[1] > 1:
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


def chaikin(polygon: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Round a closed polygon's corners by Chaikin corner cutting (organ silhouettes)."""
    p = np.asarray(polygon, dtype=np.float64)
    for _ in range(iterations):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur that is a no-op for tiny sigmas (keeps thin structures at small sizes)."""
    if sigma_px < 0.15:
        return img
    if sigma_px > 8.0 and min(img.shape[:2]) >= 64:
        # Wide kernels: blur a 4x smaller copy (the result is smooth anyway), 10x faster.
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=float(sigma_px) / 4, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma_px), borderType=cv2.BORDER_REFLECT)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-ish smooth random field: a coarse grid upsampled bicubically."""
    g = rng.standard_normal((cells[0] + 3, cells[1] + 3)).astype(np.float32)
    oy, ox = shape[0] // cells[0] + 1, shape[1] // cells[1] + 1
    big = cv2.resize(g, (shape[1] + 2 * ox, shape[0] + 2 * oy), interpolation=cv2.INTER_CUBIC)
    return big[oy:oy + shape[0], ox:ox + shape[1]]


def smooth_rows(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a per-row profile (edges extended)."""
    if sigma < 0.5:
        return values
    return gaussian_filter1d(values.astype(np.float64), sigma, mode="nearest")
