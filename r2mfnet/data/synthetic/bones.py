"""Bones: vertebrae (with cortical rims, pedicles, processes), cervical spine, sacrum, pelvis,
ribs, clavicles, scapulae and humeral heads.

Only the 17 T1-L5 bodies are in the ground-truth mask; everything else is drawn because a
segmentation model must learn to ignore it (cervical bodies, sacrum, posterior elements
overlapping the discs, ribs crossing the spine).
"""
from __future__ import annotations

import numpy as np

from r2mfnet.data.synthetic.patient import Patient
from r2mfnet.data.synthetic.raster import band, bezier, blur, ellipse, fill, smooth_noise, stroke
from r2mfnet.data.synthetic.soft_tissue import Trunk
from r2mfnet.data.synthetic.pose import ViewGeometry, unit_vectors

_LUMBAR_TP = np.array([0.30, 0.42, 0.55, 0.45, 0.50])  # transverse process length / body width


class _Layers:
    """Named scratch layers; structures of one kind overwrite, different kinds add up."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self._d: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._d:
            self._d[name] = np.zeros(self.shape, np.float32)
        return self._d[name]

    def get(self, name: str) -> np.ndarray:
        return self._d.get(name, np.zeros(self.shape, np.float32))


def _row(arr: np.ndarray, y: float) -> float:
    return float(arr[int(np.clip(round(y), 0, len(arr) - 1))])


def _vertebra(L: _Layers, centre, tilt, w, h, rot, ppm, kind: str, corners=None,
              tp_len: float = 0.4) -> None:
    """One vertebra; ``kind`` is "cervical", "thoracic" or "lumbar" (``tp_len``: transverse
    process length as a share of the body width, lumbar only)."""
    down, right = unit_vectors(tilt)
    if corners is None:
        corners = np.array([centre - right * w / 2 - down * h / 2, centre + right * w / 2 - down * h / 2,
                            centre - right * w / 2 + down * h / 2, centre + right * w / 2 + down * h / 2])
    quad = corners[[0, 1, 3, 2]]
    fill(L["body"], [quad], 1.0)
    rim = max(1.0, 1.4 * ppm)
    stroke(L["cortex"], quad, rim, 1.0, closed=True)
    # Far rims of the endplates (the beam is not parallel to them): a faint second line.
    inset = 0.09 * h
    stroke(L["cortex2"], corners[[0, 1]] + down * inset, 1.0, 1.0)
    stroke(L["cortex2"], corners[[2, 3]] - down * inset, 1.0, 1.0)
    ang = -float(tilt)
    shift = rot * 0.32 * w
    if kind == "cervical":
        for side in (-1, 1):  # uncinate/lateral masses
            ellipse(L["post"], centre + right * side * 0.55 * w, (0.16 * w, 0.45 * h), ang, 1.0)
        return
    ped_y = -0.22 * h if kind == "thoracic" else -0.12 * h
    for side in (-1, 1):
        pc = centre + down * ped_y + right * (side * 0.30 * w + shift)
        axes = (0.085 * w * (1 - 0.4 * max(0.0, -side * rot)), 0.17 * h)
        ellipse(L["post"], pc, axes, ang, 0.6)
        ellipse(L["pedicle"], pc, axes, ang, 1.0, thickness_px=max(1.0, 1.2 * ppm))
        # Transverse processes.
        if kind == "thoracic":
            a = pc + right * side * 0.1 * w
            b = a + right * side * 0.32 * w - down * 0.12 * h
            fill(L["post"], [band(np.array([a, b]), 0.07 * h)], 0.8)
        else:
            a = pc + right * side * 0.1 * w + down * 0.08 * h
            b = a + right * side * tp_len * w - down * 0.05 * h
            fill(L["post"], [band(np.array([a, b]), np.array([0.09, 0.06]) * h)], 0.9)
            stroke(L["pedicle"], np.array([a, b]), 1.0, 0.5)
    # Laminae (faint) and the spinous process (teardrop over the lower body and disc).
    sp_c = centre + down * (0.42 * h if kind == "thoracic" else 0.18 * h) + right * shift * 1.2
    sp_axes = (0.055 * w, (0.36 if kind == "thoracic" else 0.22) * h)
    lam = np.array([centre + down * ped_y + right * (-0.3 * w + shift),
                    centre + down * ped_y + right * (0.3 * w + shift), sp_c])
    fill(L["lamina"], [lam], 1.0)
    ellipse(L["post"], sp_c, sp_axes, ang, 1.0)
    ellipse(L["pedicle"], sp_c, sp_axes, ang, 0.7, thickness_px=1.0)


def _spine(L: _Layers, p: Patient, g: ViewGeometry) -> None:
    ppm = g.px_per_mm
    for k in range(17):
        kind = "thoracic" if k < 12 else "lumbar"
        tp = float(_LUMBAR_TP[k - 12]) if k >= 12 else 0.0
        _vertebra(L, g.centres[k], g.tilt_deg[k], g.width_px[k], g.height_px[k], g.rotation[k], ppm,
                  kind, corners=g.corners[k], tp_len=tp)
    # Cervical spine above T1, along the centreline.
    size = p.body_height_mm[0] / 14.5
    s = -6.0 * size
    for c in range(5):  # C7 .. C3
        hc = 12.5 * size
        s_c = s - hc / 2
        x = np.interp(s_c, g.line_s_mm, g.line[:, 0])
        y = np.interp(s_c, g.line_s_mm, g.line[:, 1])
        t = np.interp(s_c, g.line_s_mm, g.line_angle_deg)
        wc = (24.0 - 1.2 * c) * size
        _vertebra(L, np.array([x, y]), t, wc * ppm, hc * ppm, 0.0, ppm, "cervical")
        s = s_c - hc / 2 - 5.0 * size


def _pelvis(L: _Layers, p: Patient, g: ViewGeometry) -> None:
    ppm = g.px_per_mm
    down, right = unit_vectors(g.pelvis_tilt_deg)
    o = g.pelvis_centre
    size = p.body_width_mm[-1] / 50.0
    s = ppm * size

    def P(pts):
        pts = np.asarray(pts, dtype=np.float64)
        return o + pts[:, :1] * right * s + pts[:, 1:] * down * s

    sacrum = P([[-24, 0], [24, 0], [50, 4], [54, 30], [32, 70], [9, 108], [-9, 108], [-32, 70],
                [-54, 30], [-50, 4]])
    fill(L["sacrum"], [sacrum], 1.0)
    stroke(L["cortex"], P([[-24, 0], [24, 0], [26, 20], [-26, 20], [-24, 0]]), max(1.0, 1.4 * ppm), 1.0)
    for i in range(4):
        for side in (-1, 1):
            ellipse(L["foramen"], P([[side * 17, 28 + 19 * i]])[0], (5 * s, 4 * s), 0, 1.0)
    for side in (-1, 1):
        wing = P([[side * x, y] for x, y in [(40, -5), (58, -42), (85, -58), (112, -52), (130, -32),
                                             (136, -6), (131, 16), (124, 42), (115, 72), (98, 100),
                                             (72, 88), (55, 62), (44, 46)]])
        fill(L["wing"], [wing], 1.0)
        crest = P([[side * x, y] for x, y in [(58, -42), (85, -58), (112, -52), (130, -32), (136, -6),
                                              (131, 16)]])
        fill(L["crest"], [band(bezier(crest, 24), np.linspace(2.5, 4.5, 24) * s)], 1.0)
        # Thicker bone of the lower wing toward the acetabulum, and the pelvic brim.
        fill(L["pillar"], [P([[side * x, y] for x, y in [(48, 20), (118, 60), (120, 118), (80, 122),
                                                          (55, 70)]])], 1.0)
        brim = bezier(P([[side * 45, 40], [side * 70, 100], [side * 100, 120], [side * 60, 150]]), 24)
        stroke(L["crest"], brim, max(1.0, 2.0 * s), 0.5)
        stroke(L["crest"], P([[side * 42, -2], [side * 46, 50]]), max(1.0, 2.0 * s), 0.5)  # SI joint
        # Proximal femur under the acetabular roof (only visible on tall fields of view).
        head = P([[side * 96, 150]])[0]
        ellipse(L["femur"], head, (24 * s, 24 * s), 0, 1.0)
        fill(L["femur"], [band(P([[side * 96, 150], [side * 135, 182], [side * 150, 200]]), 15 * s)], 1.0)
        fill(L["femur"], [band(P([[side * 140, 178], [side * 112, 330]]), 17 * s)], 1.0)
        roof = bezier(P([[side * 70, 135], [side * 90, 112], [side * 125, 125]]), 16)
        stroke(L["crest"], roof, max(1.0, 3.0 * s), 0.8)


def _ribs(L: _Layers, p: Patient, g: ViewGeometry, trunk: Trunk) -> None:
    ppm = g.px_per_mm
    look = p.look
    for k in range(12):
        down, right = unit_vectors(g.tilt_deg[k] * 0.6)
        c = g.centres[k]
        for side in (-1, 1):
            o = c - down * 0.15 * g.height_px[k] + right * side * (0.5 * g.width_px[k] + 2 * ppm)
            cx = _row(trunk.centre, o[1])
            cage = max(_row(trunk.ribcage, o[1] + 10 * ppm), 35 * ppm)
            lat = max(cx + side * cage * look["rib_reach"] * 1.05 - o[0], 0) if side > 0 else \
                max(o[0] - (cx - cage * look["rib_reach"] * 1.05), 0)
            lat = max(lat, 25 * ppm)
            f = 1.0 - k / 11.0
            ex, ey = right * side, down

            def Q(pts, o=o, ex=ex, ey=ey):
                pts = np.asarray(pts, dtype=np.float64)
                return o + pts[:, :1] * ex * lat + pts[:, 1:] * ey * lat

            sl = look["rib_slope"]
            hw_post = np.linspace(3.5, 5.5, 28) * ppm
            if k >= 10:  # floating ribs: short, heading down and out
                scale = 0.65 if k == 10 else 0.45
                pts = bezier(Q([[0, 0], [0.5 * scale, 0.05], [scale, 0.35 * scale]]), 20)
                fill(L["rib_post"], [band(pts, hw_post[:20] * 0.9)], 1.0)
                fill(L["rib_core"], [band(pts, hw_post[:20] * 0.4)], 1.0)
                continue
            up = 0.14 * f + 0.03
            post = bezier(Q([[0, 0], [0.45, -up + sl], [0.95, 0.02 + sl], [1.0, 0.32]]), 28)
            fill(L["rib_post"], [band(post, hw_post)], 1.0)
            fill(L["rib_core"], [band(post, hw_post * 0.42)], 1.0)
            drop = look["rib_drop"]
            ant = bezier(Q([[1.0, 0.32], [1.0, 0.55 * drop], [0.7, 0.72 * drop],
                            [0.35 if k > 0 else 0.6, (0.85 if k > 0 else 0.5) * drop]]), 24)
            hw_ant = np.linspace(6.0, 4.5, 24) * ppm
            fill(L["rib_ant"], [band(ant, hw_ant)], 1.0)


def _shoulders(L: _Layers, p: Patient, g: ViewGeometry, trunk: Trunk) -> None:
    ppm = g.px_per_mm
    look = p.look
    y_sh = trunk.shoulder_y
    cx = _row(trunk.centre, y_sh)
    y_t1 = g.centres[0, 1]
    level = float(np.mean(np.diff(g.centres[:, 1])))
    for side in (-1, 1):
        med = np.array([_row(trunk.spine_x, y_t1 + level) + side * 22 * ppm, y_t1 + 1.8 * level])
        lat = np.array([cx + side * look["shoulder_half"] * 0.72 * ppm,
                        y_sh + (look["clavicle_rise"] + 8) * ppm])
        d = lat - med
        ctrl = np.array([med, med + d * 0.35 + np.array([0, -0.18 * abs(d[0])]),
                         med + d * 0.75 + np.array([0, 0.10 * abs(d[0])]), lat])
        pts = bezier(ctrl, 30)
        hw = np.linspace(8.0, 5.5, 30) * ppm
        fill(L["clavicle"], [band(pts, hw)], 1.0)
        fill(L["clav_core"], [band(pts, hw * 0.45)], 1.0)
        if look["scapula"] > 0.5:
            sup = np.array([cx + side * look["shoulder_half"] * 0.42 * ppm, y_sh + 12 * ppm])
            inf = np.array([cx + side * look["chest_half"] * 0.55 * ppm, g.centres[6, 1]])
            glen = np.array([cx + side * look["shoulder_half"] * 0.8 * ppm, y_sh + 35 * ppm])
            fill(L["scapula"], [np.array([sup, glen, inf])], 1.0)
            stroke(L["scap_rim"], np.array([glen, inf]), max(1.0, 4 * ppm), 1.0)
        if look["humeral_heads"] > 0.5:
            head = np.array([cx + side * look["shoulder_half"] * 0.93 * ppm, y_sh + 30 * ppm])
            ellipse(L["humerus"], head, (24 * ppm, 26 * ppm), 0, 1.0)


def bone_density(p: Patient, g: ViewGeometry, trunk: Trunk, rng: np.random.Generator) -> np.ndarray:
    """Projected density of all bones for one view."""
    h_img, w_img = g.image_hw
    L = _Layers((h_img, w_img))
    _spine(L, p, g)
    _pelvis(L, p, g)
    _ribs(L, p, g, trunk)
    _shoulders(L, p, g, trunk)
    ppm = g.px_per_mm
    # Trabecular texture: fine noise inside bones, a little coarser than a pixel.
    tex = 1.0 + 0.25 * blur(rng.standard_normal((h_img, w_img)).astype(np.float32), max(0.6, 0.8 * ppm))
    tex += 0.06 * smooth_noise(rng, (h_img, w_img), (24, 12))
    bd = p.look["bone_density"]
    spine = (0.09 * L.get("body") * tex + 0.07 * L.get("cortex") + 0.035 * L.get("cortex2")
             + 0.05 * L.get("post") + 0.04 * L.get("pedicle") + 0.03 * L.get("lamina"))
    soft = lambda name, mm: blur(L.get(name), mm * ppm)  # noqa: E731
    wing = soft("wing", 6)
    pelvis = (0.09 * soft("sacrum", 1.5) * tex - 0.04 * soft("foramen", 1.0) * L.get("sacrum")
              + 0.06 * wing * wing * tex + 0.07 * soft("crest", 1.0) + 0.04 * soft("pillar", 10)
              + 0.10 * soft("femur", 1.5))
    ribs = soft("rib_post", 0.8) * 0.07 - 0.025 * soft("rib_core", 0.8) + 0.03 * soft("rib_ant", 1.5)
    girdle = (0.10 * soft("clavicle", 0.8) - 0.035 * soft("clav_core", 0.8) + 0.03 * soft("scapula", 3)
              + 0.04 * soft("scap_rim", 1.5) + 0.10 * soft("humerus", 2) * tex)
    return (bd * (spine + pelvis + ribs * tex + girdle)).astype(np.float32)
