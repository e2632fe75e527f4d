"""Turn a posed patient into a radiograph-like image and its ground-truth mask.

Pipeline (mirrors a digital radiography chain): projected density of soft tissue and bone ->
system blur -> display window and characteristic curve (bone bright, air dark) -> exposure
gradient, occasional stitching seam -> lead marker, ruler and collimation -> quantum-like noise
-> the detector's unsharp-mask enhancement. The quality grade scales blur, noise, contrast and
enhancement (:mod:`.quality`).
"""
from __future__ import annotations

import cv2
import numpy as np

from r2mfnet.data.synthetic.patient import Patient
from r2mfnet.data.synthetic.bones import bone_density
from r2mfnet.data.synthetic.raster import blur, fill, stroke
from r2mfnet.data.synthetic.quality import QUALITY_SPECS
from r2mfnet.data.synthetic.soft_tissue import WATER_PER_MM, Trunk, soft_tissue, trunk_mask, trunk_profile
from r2mfnet.data.synthetic.pose import ViewGeometry


def rasterize_mask(corners: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Binary mask (uint8 0/255) of the union of the vertebral body quadrilaterals."""
    mask = np.zeros(image_hw, np.uint8)
    quads = [np.asarray(c)[[0, 1, 3, 2]] for c in corners]  # TL, TR, BR, BL: a simple polygon
    fill(mask, quads, 255)
    return mask


def _trachea(g: ViewGeometry, trunk: Trunk) -> np.ndarray:
    """Air column over the cervical and upper thoracic spine, splitting at the carina."""
    h_img, w_img = g.image_hw
    ppm = g.px_per_mm
    layer = np.zeros((h_img, w_img), np.float32)
    carina_y = g.centres[4, 1]
    top = max(g.line[0, 1], 0.0)
    ys = np.linspace(top, carina_y, 12)
    xs = np.interp(ys, trunk_rows(h_img), trunk.spine_x) + 3 * ppm
    pts = np.stack([xs, ys], axis=1)
    stroke(layer, pts, 17 * ppm, 1.0)
    c = pts[-1]
    for side, ang in ((-1, 35), (1, 50)):
        r = np.radians(ang)
        end = c + 38 * ppm * np.array([side * np.sin(r), np.cos(r)])
        stroke(layer, np.array([c, end]), 11 * ppm, 1.0)
    return blur(layer, 2.5 * ppm)


def trunk_rows(h_img: int) -> np.ndarray:
    return np.arange(h_img, dtype=np.float64)


def _marker(img: np.ndarray, g: ViewGeometry, body: np.ndarray, rng: np.random.Generator) -> None:
    """A lead 'R' (image left) or 'L' (image right) letter, placed off the body when possible."""
    h_img, w_img = g.image_hw
    ppm = g.px_per_mm
    letter = "R" if rng.random() < 0.6 else "L"
    side_left = letter == "R"
    size_px = max(6.0, 16 * ppm * rng.uniform(0.8, 1.3))
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = size_px / 22.0
    thick = max(1, int(round(size_px / 7)))
    (tw, th), _ = cv2.getTextSize(letter, font, scale, thick)
    best = None
    for _ in range(12):
        x = rng.uniform(0.02, 0.2) * w_img if side_left else w_img - tw - rng.uniform(0.02, 0.2) * w_img
        y = rng.uniform(0.04, 0.35) * h_img + th
        x0, y0 = int(np.clip(x, 0, w_img - tw - 1)), int(np.clip(y, th + 1, h_img - 2))
        overlap = body[max(0, y0 - th):y0, x0:x0 + tw].mean() if tw > 0 else 1.0
        if best is None or overlap < best[0]:
            best = (overlap, x0, y0)
    _, x0, y0 = best
    m = np.zeros_like(img, dtype=np.uint8)
    cv2.putText(m, letter, (x0, y0), font, scale, 255, thick, cv2.LINE_AA)
    if rng.random() < 0.5:  # the plastic holder's frame
        pad = max(2, int(size_px * 0.25))
        cv2.rectangle(m, (x0 - pad, y0 - th - pad), (x0 + tw + pad, y0 + pad), 110, 1, cv2.LINE_AA)
    a = m.astype(np.float32) / 255.0
    img[:] = img * (1 - a) + 0.98 * a


def _ruler(img: np.ndarray, g: ViewGeometry, rng: np.random.Generator) -> None:
    """Radiopaque ruler with centimetre ticks along one edge (common on full-spine films)."""
    h_img, w_img = g.image_hw
    ppm = g.px_per_mm
    x = rng.uniform(0.015, 0.06) * w_img
    if rng.random() < 0.5:
        x = w_img - 1 - x
    layer = np.zeros_like(img)
    y0, y1 = rng.uniform(0.0, 0.1) * h_img, rng.uniform(0.9, 1.0) * h_img
    stroke(layer, np.array([[x, y0], [x, y1]]), max(1.0, 1.2 * ppm), 0.7)
    step = 10 * ppm
    if step >= 2.0:
        for i, y in enumerate(np.arange(y0, y1, step)):
            ln = (7 if i % 5 == 0 else 4) * ppm
            d = 1 if x < w_img / 2 else -1
            stroke(layer, np.array([[x, y], [x + d * ln, y]]), 1.0, 0.7)
    layer = blur(layer, 0.5)
    img[:] = np.maximum(img, layer * 1.3)


def _collimate(img: np.ndarray, g: ViewGeometry, rng: np.random.Generator) -> None:
    """Bright (unexposed) border beyond slightly tilted collimator blades on one or both sides."""
    h_img, w_img = g.image_hw
    rows = np.arange(h_img, dtype=np.float32)[:, None]
    cols = np.arange(w_img, dtype=np.float32)[None, :]
    field = np.ones((h_img, w_img), np.float32)
    spine_lo = g.corners[..., 0].min()
    spine_hi = g.corners[..., 0].max()
    sides = [s for s in (-1, 1) if rng.random() < 0.6] or [int(rng.choice([-1, 1]))]
    for side in sides:
        depth = rng.uniform(0.02, 0.10) * w_img
        slope = rng.normal(0, 0.01)
        if side < 0:
            edge = min(depth, spine_lo - 4) + slope * (rows - h_img / 2)
            field = np.minimum(field, np.clip(cols - edge, 0, 1))
        else:
            edge = max(w_img - 1 - depth, spine_hi + 4) + slope * (rows - h_img / 2)
            field = np.minimum(field, np.clip(edge - cols, 0, 1))
    if rng.random() < 0.3:
        edge = rng.uniform(0.0, 0.05) * h_img
        field = np.minimum(field, np.clip(rows - edge, 0, 1) * np.ones_like(cols))
    field = blur(field, 1.0)
    veil = rng.uniform(0.8, 0.95)
    img[:] = img * field + veil * (1 - field)


def _display(density: np.ndarray, body: np.ndarray, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """Window and characteristic curve: air black, soft tissue grey, bone white."""
    inside = density[body] if body.any() else density.ravel()
    p_lo, p_hi = np.percentile(inside, [1.0, 99.8])
    air = float(np.percentile(density, 0.5))
    lo = air + (float(p_lo) - air) * rng.uniform(0.0, 0.5)
    hi = float(p_hi) + (float(p_hi) - lo) * rng.uniform(0.0, 0.1)
    v = np.clip((density - lo) / max(hi - lo, 1e-6), 0.0, 1.3)
    # Film-like S-curve; the toe keeps the air dark, the shoulder keeps bone from clipping.
    gamma = rng.uniform(0.85, 1.15)
    v = v ** gamma
    k = 3.2 * contrast
    mid = rng.uniform(0.5, 0.6)
    s = 1.0 / (1.0 + np.exp(-k * (v - mid)))
    s0 = 1.0 / (1.0 + np.exp(k * mid))
    s1 = 1.0 / (1.0 + np.exp(-k * (1.0 - mid)))
    return ((s - s0) / (s1 - s0)).astype(np.float32)


def render_view(p: Patient, g: ViewGeometry, rng: np.random.Generator) -> np.ndarray:
    """Render one view as float32 in [0, 1] (display intensity, bone bright)."""
    h_img, w_img = g.image_hw
    ppm = g.px_per_mm
    spec = QUALITY_SPECS[p.quality]
    jit = lambda v: float(v * rng.uniform(0.85, 1.15))  # noqa: E731
    trunk = trunk_profile(p, g)
    density = soft_tissue(p, g, trunk, rng)
    density -= 0.6 * WATER_PER_MM * 40 * _trachea(g, trunk)
    density += bone_density(p, g, trunk, rng)
    density = np.clip(density, 0.0, None)
    density = blur(density, jit(spec.blur_mm) * ppm)
    # Dynamic-range compression of the detector processing: large-scale thickness differences
    # (abdomen vs chest) are flattened so that bone stands out everywhere, as on clinical films.
    density = density - rng.uniform(0.45, 0.65) * blur(density, 25 * ppm)
    body = trunk_mask(trunk, (h_img, w_img))
    img = _display(density, body, jit(spec.contrast), rng)
    # Exposure: anode heel (top/bottom) and lateral gradient; sometimes a stitching seam.
    yy = np.linspace(-0.5, 0.5, h_img, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w_img, dtype=np.float32)[None, :]
    img = img + rng.uniform(-0.08, 0.08) * yy + rng.uniform(-0.05, 0.05) * xx
    if rng.random() < 0.15:
        seam = rng.uniform(0.35, 0.65) * h_img
        step = np.where(np.arange(h_img) > seam, rng.uniform(-0.05, 0.05), 0.0).astype(np.float32)
        img = img + blur(np.repeat(step[:, None], w_img, 1), 1.0)
    if spec.scatter > 0:
        img = img * (1 - jit(spec.scatter)) + jit(spec.scatter) * 0.5
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    if rng.random() < 0.55:
        _marker(img, g, body, rng)
    if rng.random() < 0.2:
        _ruler(img, g, rng)
    if rng.random() < 0.4:
        _collimate(img, g, rng)
    # Quantum-like noise: stronger where fewer photons arrive (bright = dense), slightly correlated.
    sigma = jit(spec.noise)
    noise = rng.standard_normal((h_img, w_img)).astype(np.float32)
    noise = blur(noise, 0.5) * 1.6
    img = img + sigma * (0.6 + 0.8 * img) * noise
    # Detector post-processing: unsharp masking at a large radius (edge and contrast boost).
    gain = jit(spec.enhance)
    if gain > 0:
        base = blur(img, 12 * ppm)
        img = img + gain * (img - base)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def to_uint16(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantise to 16 bit with a per-image black level and gain, like raw detector output."""
    lo = rng.uniform(300, 3000)
    hi = rng.uniform(48000, 64000)
    return np.round(lo + np.clip(img, 0, 1) * (hi - lo)).astype(np.uint16)


__all__ = ["rasterize_mask", "render_view", "to_uint16"]
