"""The synthetic patient: a scoliotic spine T1-L5 plus the body habitus it is rendered with.

Everything here is in millimetres and degrees and independent of the image size, so that one
patient can be drawn at any resolution and in every view. Only the *shape* of the curves is
decided here; how a bending radiograph changes them is :mod:`.pose`' job.

Sign convention (used throughout the generator): a curve's ``sign`` is the sign of its signed
Cobb difference ``tilt(lower end) - tilt(upper end)`` where ``tilt`` is the angle of the spine's
tangent to the image vertical (positive = moving to image-right when going down). ``sign=+1``
means the curve bulges to image-left. Radiographs are displayed with the patient's right on the
image left, so ``sign=+1`` is a curve *convex to the patient's right* (the common right thoracic
curve).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from r2mfnet.data.views import LEVELS

N_LEVELS = len(LEVELS)  # 17: T1..T12, L1..L5

# Per-level steepest tangent-angle change a curve may have (deg per level). A cosine curve over n
# levels peaks at (pi/2) * Cobb / n; limiting it keeps adjacent bodies from overlapping.
MAX_DEG_PER_LEVEL = 15.0


@dataclass(frozen=True)
class Curve:
    """One structural curve between two end vertebrae (indices into ``LEVELS``)."""

    region: str  # "thoracic", "thoracolumbar" or "lumbar"
    upper: int
    lower: int
    cobb_deg: float  # requested coronal Cobb angle (>= 0)
    sign: int  # +1 convex to the patient's right (image left), -1 convex to the patient's left
    flexibility: float  # fraction of the Cobb angle removed when bending toward the convexity
    stiffening: float  # fraction added when bending toward the concavity
    skew: float  # exponent warping the curve's shape, moves the apex up (<1) or down (>1)

    @property
    def convexity(self) -> str:
        """Convex side in patient terms, as clinicians name curves ("right thoracic")."""
        return "right" if self.sign > 0 else "left"


@dataclass(frozen=True)
class Patient:
    """A sampled patient: spine shape, vertebra sizes and rendering habitus."""

    curve_type: str  # "C" (single curve) or "S" (double curve)
    curves: tuple[Curve, ...]  # ordered top to bottom
    main_curve: int  # index into ``curves`` of the largest curve
    body_height_mm: np.ndarray  # (17,) vertebral body heights
    body_width_mm: np.ndarray  # (17,)
    disc_mm: np.ndarray  # (16,) disc heights between consecutive levels
    tilt_jitter_deg: np.ndarray  # (17,) per-vertebra anatomical tilt irregularity
    wedge_gain: float  # share of the local coronal curvature taken up by body wedging
    coronal_offset_deg: float  # shifts all coronal knot angles: a slight trunk lean
    pelvic_target_deg: float  # preferred L5 tilt in the coronal view
    bend_deg: dict[str, float]  # total trunk bend per bending view
    lumbosacral_share: float  # part of the bend taken at the lumbosacral junction/pelvis
    quality: str
    look: dict[str, float] = field(default_factory=dict)  # habitus and organ parameters

    @property
    def spine_length_mm(self) -> float:
        """T1 top to L5 bottom along the spine (used to set the pixel spacing)."""
        return float(self.body_height_mm.sum() + self.disc_mm.sum())


def _base_sizes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adult reference sizes: bodies grow from T1 to L5, lumbar discs are twice thoracic ones."""
    k = np.arange(N_LEVELS, dtype=np.float64)
    heights = np.where(k < 12, 14.5 + 7.5 * k / 11.0, 24.0 + 0.8 * np.minimum(k - 12, 2.5))
    widths = 27.0 + 23.0 * (k / 16.0) ** 1.5
    discs = np.empty(N_LEVELS - 1)
    discs[:11] = 3.8 + 2.2 * np.arange(11) / 10.0  # T1-2 .. T11-12
    discs[11] = 7.0  # T12-L1
    discs[12:] = [8.5, 9.5, 10.5, 10.0]  # L1-2 .. L4-5
    return heights, widths, discs


def _choose_span(rng: np.random.Generator, region: str) -> tuple[int, int]:
    """End vertebrae of a single curve in a typical place for its region."""
    if region == "thoracic":
        return int(rng.integers(3, 6)), int(rng.integers(9, 12))
    if region == "thoracolumbar":
        return int(rng.integers(6, 9)), int(rng.integers(12, 15))
    return int(rng.integers(9, 13)), int(rng.integers(14, 17))  # lumbar


def _widen(upper: int, lower: int, cobb: float, lo: int, hi: int) -> tuple[int, int]:
    """Widen a span until the curve fits under :data:`MAX_DEG_PER_LEVEL`."""
    need = int(np.ceil(np.pi / 2 * cobb / MAX_DEG_PER_LEVEL))
    toggle = True
    while lower - upper < need and (upper > lo or lower < hi):
        if (toggle and upper > lo) or lower >= hi:
            upper -= 1
        else:
            lower += 1
        toggle = not toggle
    return upper, lower


def _curve(rng: np.random.Generator, region: str, upper: int, lower: int, cobb: float, sign: int,
           structural: bool) -> Curve:
    flex = rng.uniform(0.1, 0.7) if structural else rng.uniform(0.35, 0.9)
    return Curve(region=region, upper=upper, lower=lower, cobb_deg=float(cobb), sign=int(sign),
                 flexibility=float(flex), stiffening=float(rng.uniform(0.0, 0.15)),
                 skew=float(np.exp(rng.uniform(-0.25, 0.25))))


def _sample_curves(rng: np.random.Generator) -> tuple[str, tuple[Curve, ...], int]:
    if rng.random() < 0.5:
        region = str(rng.choice(["thoracic", "thoracolumbar", "lumbar"], p=[0.45, 0.3, 0.25]))
        cobb = rng.uniform(0.0, 70.0)
        right = 0.85 if region == "thoracic" else (0.5 if region == "thoracolumbar" else 0.3)
        sign = 1 if rng.random() < right else -1
        upper, lower = _choose_span(rng, region)
        upper, lower = _widen(upper, lower, cobb, 1, 16)
        return "C", (_curve(rng, region, upper, lower, cobb, sign, True),), 0
    # Double curve: thoracic over lumbar (or thoracolumbar), opposite convexities.
    upper = int(rng.integers(2, 6))
    junction = int(rng.integers(9, 13))
    lower = int(rng.integers(14, 17))
    big = rng.uniform(10.0, 70.0)
    small = big * rng.uniform(0.5, 1.0)
    thoracic_main = rng.random() < 0.65
    c_top, c_bot = (big, small) if thoracic_main else (small, big)
    # A shared junction: keep each part long enough, moving the outer ends first.
    upper, junction = _widen(upper, junction, c_top, 1, junction)
    junction, lower = _widen(junction, lower, c_bot, junction, 16)
    if junction - upper < np.ceil(np.pi / 2 * c_top / MAX_DEG_PER_LEVEL):
        c_top = MAX_DEG_PER_LEVEL * (junction - upper) * 2 / np.pi
    if lower - junction < np.ceil(np.pi / 2 * c_bot / MAX_DEG_PER_LEVEL):
        c_bot = MAX_DEG_PER_LEVEL * (lower - junction) * 2 / np.pi
    sign = 1 if rng.random() < 0.8 else -1
    bottom_region = "lumbar" if junction >= 11 else "thoracolumbar"
    top = _curve(rng, "thoracic", upper, junction, c_top, sign, thoracic_main)
    bot = _curve(rng, bottom_region, junction, lower, c_bot, -sign, not thoracic_main)
    return "S", (top, bot), (0 if c_top >= c_bot else 1)


def _sample_look(rng: np.random.Generator) -> dict[str, float]:
    """Body habitus and organ placement; millimetres unless named otherwise."""
    u = rng.uniform
    return {
        "spine_fraction": u(0.56, 0.66),  # T1 top to L5 bottom as a share of image height
        "top_fraction": u(0.11, 0.18),  # T1 top position as a share of image height
        "pelvis_shift": rng.normal(0.0, 0.025),  # share of image width
        "neck_half": u(45, 62),
        "shoulder_half": u(170, 215),
        "chest_half": u(135, 170),
        "waist_half": u(110, 145),
        "hip_half": u(150, 190),
        "chest_depth": u(170, 230),
        "abdomen_depth": u(180, 280),
        "mediastinum_half": u(18, 28),
        "heart_rx": u(55, 75),
        "heart_ry": u(45, 60),
        "heart_dx": u(15, 35),
        "dome_right": u(-0.5, 0.6),  # image-left dome, in vertebra levels relative to T10 centre
        "dome_drop": u(0.4, 1.2),  # image-right dome lower by this many levels
        "lung_depth": u(0.5, 0.7),  # share of the chest depth that is air
        "bone_density": u(0.8, 1.2),
        "rib_slope": u(-0.15, 0.1),
        "rib_reach": u(0.82, 0.95),
        "rib_drop": u(0.9, 1.3),
        "clavicle_rise": u(-20, 15),
        "stomach_bubble": float(rng.random() < 0.5),
        "bowel_gas": float(rng.integers(1, 7)),
        "scapula": float(rng.random() < 0.7),
        "humeral_heads": float(rng.random() < 0.6),
        "breast": float(rng.random() < 0.35),
    }


def sample_patient(rng: np.random.Generator, quality: str) -> Patient:
    """Draw one patient. ``quality`` is chosen by the caller so that its mix is controllable."""
    curve_type, curves, main = _sample_curves(rng)
    heights, widths, discs = _base_sizes()
    size = rng.uniform(0.84, 1.06)
    heights = heights * size * (1 + rng.normal(0, 0.035, N_LEVELS))
    widths = widths * size * (1 + rng.normal(0, 0.035, N_LEVELS))
    discs = discs * size * (1 + rng.normal(0, 0.08, N_LEVELS - 1))
    jitter = np.clip(rng.normal(0.0, 0.6, N_LEVELS), -1.2, 1.2)
    max_cobb = max(c.cobb_deg for c in curves)
    return Patient(
        curve_type=curve_type,
        curves=curves,
        main_curve=main,
        body_height_mm=heights,
        body_width_mm=widths,
        disc_mm=np.clip(discs, 2.5, None),
        tilt_jitter_deg=jitter,
        wedge_gain=float(rng.uniform(0.3, 0.55)),
        coronal_offset_deg=float(rng.uniform(-0.12, 0.12) * max_cobb),
        pelvic_target_deg=float(rng.normal(0.0, 2.0)),
        bend_deg={"left_bending": float(rng.uniform(15, 35)),
                  "right_bending": float(rng.uniform(15, 35))},
        lumbosacral_share=float(rng.uniform(0.2, 0.4)),
        quality=quality,
        look=_sample_look(rng),
    )
