"""Soft tissues: trunk outline and thickness, lungs, heart, diaphragm, stomach and bowel gas.

Densities are projected attenuation in arbitrary units (about 0.005 per mm of water); the
renderer turns the summed density into detector signal. The trunk is described per image row
(centre, half-width, rib-cage half-width, AP depth) and follows a smoothed copy of the spine, so a
bending patient's chest moves with their spine while the pelvis stays put.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from r2mfnet.data.synthetic.patient import Patient
from r2mfnet.data.synthetic.raster import blur, chaikin, ellipse, fill, smooth_noise, smooth_rows
from r2mfnet.data.synthetic.pose import ViewGeometry

WATER_PER_MM = 0.0048


@dataclass(frozen=True)
class Trunk:
    """Per-row description of the trunk (arrays of length H, pixels unless noted)."""

    centre: np.ndarray  # trunk midline x
    spine_x: np.ndarray  # spine centreline x (unsmoothed)
    half: np.ndarray  # skin half-width
    ribcage: np.ndarray  # inner rib-cage half-width (0 where there is none)
    depth_mm: np.ndarray  # antero-posterior thickness
    level_y: np.ndarray  # (17,) vertebra centre rows
    ppm: float
    shoulder_y: float
    dome_y: tuple[float, float]  # diaphragm dome top rows (image-left, image-right)


def trunk_profile(p: Patient, g: ViewGeometry) -> Trunk:
    """Body outline and rib cage following the spine of this view."""
    h_img, _ = g.image_hw
    ppm = g.px_per_mm
    look = p.look
    rows = np.arange(h_img, dtype=np.float64)
    ly = g.line[:, 1]
    order = np.argsort(ly)
    spine_x = np.interp(rows, ly[order], g.line[order, 0],
                        left=g.line[order[0], 0], right=g.pelvis_centre[0])
    below = rows > g.pelvis_centre[1]
    spine_x[below] = g.pelvis_centre[0]
    centre = smooth_rows(spine_x, 70 * ppm)
    yc = g.centres[:, 1]
    t1_top = float(g.corners[0, :2, 1].min())
    l5_bot = float(g.corners[-1, 2:, 1].max())
    mm = ppm
    chest = look["chest_half"]
    ky = [t1_top - 95 * mm, t1_top - 45 * mm, t1_top - 12 * mm, yc[0] + 8 * mm, yc[3], yc[7],
          yc[11], yc[14], l5_bot + 35 * mm, l5_bot + 120 * mm]
    kv = [look["neck_half"], look["neck_half"] * 1.15, look["shoulder_half"] * 0.82,
          look["shoulder_half"], chest + 0.35 * (look["shoulder_half"] - chest), chest,
          chest * 0.94, look["waist_half"], look["hip_half"], look["hip_half"] * 1.03]
    half = smooth_rows(np.interp(rows, ky, kv), 12 * mm) * mm
    cage = chest - 14
    ky = [t1_top - 22 * mm, yc[0], yc[1], yc[3], yc[6], yc[9], yc[11], yc[11] + 50 * mm]
    kv = [0.0, 55, 0.62 * cage, 0.85 * cage, 0.95 * cage, 0.95 * cage, 0.86 * cage, 0.7 * cage]
    ribcage = np.interp(rows, ky, kv, left=0.0, right=0.0)
    ribcage = smooth_rows(ribcage, 8 * mm) * mm
    dmean = 0.5 * (look["chest_depth"] + look["abdomen_depth"])
    ky = [t1_top - 60 * mm, yc[0], yc[5], yc[11], yc[14], l5_bot + 60 * mm]
    kv = [110, 0.75 * look["chest_depth"], look["chest_depth"], dmean, look["abdomen_depth"],
          0.92 * look["abdomen_depth"]]
    depth = smooth_rows(np.interp(rows, ky, kv), 15 * mm)
    level = float(np.mean(np.diff(yc)))
    dome_l = yc[9] + look["dome_right"] * level
    dome_r = dome_l + look["dome_drop"] * level
    return Trunk(centre=centre, spine_x=spine_x, half=half, ribcage=ribcage, depth_mm=depth,
                 level_y=yc, ppm=ppm, shoulder_y=t1_top - 12 * mm, dome_y=(dome_l, dome_r))


def soft_tissue(p: Patient, g: ViewGeometry, trunk: Trunk, rng: np.random.Generator) -> np.ndarray:
    """Density of the body without bones: trunk ellipse cross-section minus lung air."""
    h_img, w_img = g.image_hw
    ppm = trunk.ppm
    xx = np.arange(w_img, dtype=np.float32)[None, :]
    dx = (xx - trunk.centre[:, None].astype(np.float32)) / trunk.half[:, None].astype(np.float32)
    profile = np.sqrt(np.clip(1.0 - dx * dx, 0.0, 1.0))
    # Subcutaneous fat makes the skin edge a little softer than a pure ellipse.
    profile = profile ** 0.8
    density = (WATER_PER_MM * trunk.depth_mm[:, None] * profile).astype(np.float32)
    density *= 1.0 + 0.04 * smooth_noise(rng, (h_img, w_img), (6, 3))

    lungs = lung_mask(p, g, trunk)
    air = p.look["lung_depth"] * WATER_PER_MM * trunk.depth_mm[:, None].astype(np.float32) * 0.85
    # Vascular markings: denser near the hila, fading toward the periphery.
    hil = np.abs(np.arange(w_img)[None, :] - trunk.spine_x[:, None]) / np.maximum(trunk.ribcage[:, None], 1)
    vessels = 0.30 * np.clip(1.0 - hil, 0, 1) ** 1.5 + 0.10 * np.abs(
        smooth_noise(rng, (h_img, w_img), (max(4, h_img // 10), max(2, w_img // 10))))
    density -= lungs * air * profile * (1.0 - vessels.astype(np.float32))
    # Breast shadows over the lower lateral chest.
    if p.look["breast"] > 0.5:
        layer = np.zeros((h_img, w_img), np.float32)
        y = trunk.level_y[9] - 10 * ppm
        for side in (-1, 1):
            yi = int(np.clip(y, 0, h_img - 1))
            x = trunk.centre[yi] + side * 0.6 * trunk.half[yi]
            ellipse(layer, (x, y), (75 * ppm, 55 * ppm), 0, 1.0)
        density += blur(layer, 10 * ppm) * 0.12
    density += abdomen_gas(p, g, trunk, rng) * profile
    return np.clip(density, 0.0, None)


def lung_mask(p: Patient, g: ViewGeometry, trunk: Trunk) -> np.ndarray:
    """Soft mask (0..1) of the aerated lungs, minus mediastinum, heart and below the domes."""
    h_img, w_img = g.image_hw
    ppm = trunk.ppm
    look = p.look
    rows = np.arange(h_img, dtype=np.float32)[:, None]
    xx = np.arange(w_img, dtype=np.float32)[None, :]
    cage = trunk.ribcage[:, None].astype(np.float32)
    cx = trunk.centre[:, None].astype(np.float32)
    sx = trunk.spine_x[:, None].astype(np.float32)
    med = look["mediastinum_half"] * ppm
    apex = trunk.level_y[0] - 30 * ppm
    mask = np.zeros((h_img, w_img), np.float32)
    for side, dome in zip((-1, 1), trunk.dome_y):
        lateral = cx + side * (cage - 3 * ppm)
        inside = (xx - lateral) * side < 0
        inside &= (xx - (sx + side * med)) * side > 0
        # Rounded apex: the lung narrows above the first ribs.
        top_r = 70 * ppm
        width = np.maximum(cage - med, 1.0)
        mid = sx + side * (med + 0.45 * width)
        rel = np.clip((rows - apex) / top_r, 0, 1)
        inside &= np.abs(xx - mid) < np.sqrt(rel) * (0.55 * width + 2)
        # Diaphragm dome: highest at mid-lung, deepest at the costophrenic angle.
        u = (xx - mid) / (0.6 * width)
        dome_y = dome + (18 * ppm) * u * u + 12 * ppm * np.clip(side * u, 0, None) ** 3
        inside &= rows < dome_y
        mask[inside] = 1.0
    # Mediastinal silhouette: superior mediastinum, aortic knob, pulmonary trunk, left ventricle
    # down to the diaphragm on the patient's left (image right), right atrium on the other side.
    heart = np.zeros_like(mask)
    dome_l, dome_r = trunk.dome_y
    ly = trunk.level_y

    def sx_at(y: float) -> float:
        return float(trunk.spine_x[int(np.clip(y, 0, h_img - 1))])

    rx, dx = look["heart_rx"], look["heart_dx"]
    pts = [(-22, ly[0] - 20 * ppm), (22, ly[0] - 20 * ppm), (30, ly[3] - 5 * ppm), (38, ly[4]),
           (32, ly[5]), (40, ly[6]), (dx + 0.75 * rx, dome_r - 45 * ppm),
           (dx + 0.95 * rx, dome_r - 12 * ppm), (dx + 0.85 * rx, dome_r + 10 * ppm),
           (-40, dome_l + 8 * ppm), (-45, dome_l - 25 * ppm), (-38, ly[5]), (-24, ly[3])]
    poly = np.array([[sx_at(y) + x * ppm, y] for x, y in pts])
    smooth = chaikin(poly, 3)
    fill(heart, [smooth], 1.0)
    heart = blur(heart, 3.0 * ppm)
    mask *= 1.0 - heart
    return blur(mask, 4.0 * ppm)


def abdomen_gas(p: Patient, g: ViewGeometry, trunk: Trunk, rng: np.random.Generator) -> np.ndarray:
    """Negative density: stomach bubble under the left dome and mottled bowel gas."""
    h_img, w_img = g.image_hw
    ppm = trunk.ppm
    layer = np.zeros((h_img, w_img), np.float32)
    if p.look["stomach_bubble"] > 0.5:
        y = trunk.dome_y[1] + 22 * ppm
        yi = int(np.clip(y, 0, h_img - 1))
        x = trunk.spine_x[yi] + 65 * ppm
        bubble = np.zeros_like(layer)
        ellipse(bubble, (x, y), (32 * ppm, 22 * ppm), 0, 1.0)
        bubble[int(max(y, 0)):] = 0.0  # air-fluid level: flat bottom
        layer += 0.18 * bubble
    n = int(p.look["bowel_gas"])
    y0 = trunk.level_y[12]
    y1 = min(trunk.level_y[16] + 60 * ppm, h_img - 1)
    for _ in range(n):
        y = rng.uniform(y0, y1)
        yi = int(np.clip(y, 0, h_img - 1))
        x = trunk.centre[yi] + rng.uniform(-0.7, 0.7) * trunk.half[yi]
        blob = np.zeros_like(layer)
        ellipse(blob, (x, y), (rng.uniform(8, 30) * ppm, rng.uniform(6, 18) * ppm),
                rng.uniform(0, 180), 1.0)
        layer += blob * rng.uniform(0.03, 0.07)
    mottle = np.clip(smooth_noise(rng, (h_img, w_img), (max(4, h_img // 12), max(2, w_img // 12))), 0, None)
    band = ((np.arange(h_img) > y0) & (np.arange(h_img) < y1)).astype(np.float32)[:, None]
    layer += 0.03 * mottle * band
    return -blur(layer, 2.5 * ppm)


def trunk_mask(trunk: Trunk, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the body (used to place markers outside the patient)."""
    xx = np.arange(shape[1])[None, :]
    return np.abs(xx - trunk.centre[:, None]) < trunk.half[:, None]

