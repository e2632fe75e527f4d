"""Image-quality grades: how sharp, how noisy and how contrasted a synthetic radiograph is.

Grades mimic what degrades real full-spine films: a large patient or low dose (noise), motion
and scatter (blur, flat contrast), and weaker post-processing. Blur is given in millimetres so a
grade means the same thing at every image size.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualitySpec:
    """Parameters of one grade; the renderer jitters each by about +-15 % per view."""

    blur_mm: float  # Gaussian sigma of the system blur
    noise: float  # noise std in display units (0..1 image)
    contrast: float  # slope of the display curve around mid-grey
    enhance: float  # unsharp-mask gain of the detector's post-processing
    scatter: float  # share of a flat veil added to the image (lowers contrast)


QUALITY_SPECS: dict[str, QualitySpec] = {
    "high": QualitySpec(blur_mm=0.9, noise=0.010, contrast=1.00, enhance=0.65, scatter=0.00),
    "medium": QualitySpec(blur_mm=1.6, noise=0.018, contrast=0.80, enhance=0.5, scatter=0.08),
    "low": QualitySpec(blur_mm=2.7, noise=0.035, contrast=0.62, enhance=0.2, scatter=0.18),
}
"""Keys are :data:`r2mfnet.data.views.QUALITIES`."""

DEFAULT_QUALITY_WEIGHTS: tuple[float, float, float] = (0.4, 0.35, 0.25)
"""Share of high, medium and low quality cases in a generated data set."""
