"""Names shared by every part of the data layer: views, quality grades and vertebra levels."""
from __future__ import annotations

VIEWS: tuple[str, ...] = ("coronal", "left_bending", "right_bending")
"""The three radiographs of one scoliosis work-up. Manifests must use exactly these names."""

QUALITIES: tuple[str, ...] = ("high", "medium", "low")
"""Image-quality grades, used to break metrics down; a manifest may leave quality empty."""

LEVELS: tuple[str, ...] = tuple([f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])
"""The 17 vertebrae labelled in SpineWeb16 and drawn by the synthetic generator, top to bottom."""

MIRRORED_VIEW: dict[str, str] = {
    "coronal": "coronal",
    "left_bending": "right_bending",
    "right_bending": "left_bending",
}
"""A horizontal flip turns a left-bending radiograph into a right-bending one."""
