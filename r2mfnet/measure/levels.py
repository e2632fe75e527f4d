"""Approximate vertebra levels along a spine whose individual vertebrae are not identified.

A mask (or a centreline) gives the spine from the top of T1 to the bottom of L5 but not where one
vertebra ends and the next begins. We map the position along the spine to a continuous **level
position** ``p`` in ``[0, 17]``: ``p = 0`` is the top of T1, ``p = k`` the boundary between
``LEVELS[k-1]`` and ``LEVELS[k]`` (a disc), ``p = 17`` the bottom of L5. The spine's length is split
in proportion to typical adult segment heights (vertebral body plus the disc below it; L5 without
its disc, since the mask ends at L5's lower end plate), because lumbar segments are about 1.6
times as tall as upper thoracic ones and an even split would put every thoracic level too low.

The numbers below are rounded typical values (body heights grow from about 15 mm at T1 to
about 27 mm in the lumbar spine; discs from about 4-5 mm in the upper thoracic to about 10-11 mm
in the lumbar spine). They are an approximation: individual spines differ by more than a level's
height in places, so levels from masks are labelled approximate wherever they are reported.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from r2mfnet.data.views import LEVELS

TYPICAL_SEGMENT_HEIGHTS_MM: tuple[float, ...] = (
    19.0, 20.0, 20.5, 21.0, 21.5, 22.0, 23.0, 23.5, 24.5, 25.5, 27.0, 28.5,  # T1..T12
    35.0, 36.5, 37.5, 38.0, 27.0,  # L1..L5 (L5: body only)
)
"""Approximate typical segment height (body + disc below) of T1..L5, in mm; only ratios matter."""

assert len(TYPICAL_SEGMENT_HEIGHTS_MM) == len(LEVELS)


def level_boundaries(weights: Sequence[float] | str | None = None) -> np.ndarray:
    """Cumulative fractions ``[0, ..., 1]`` (18 values) of the spine length at level boundaries.

    ``weights``: 17 relative segment heights, ``"even"`` for equal levels, or ``None`` for
    :data:`TYPICAL_SEGMENT_HEIGHTS_MM`.
    """
    if weights is None:
        w = np.asarray(TYPICAL_SEGMENT_HEIGHTS_MM, dtype=np.float64)
    elif isinstance(weights, str):
        if weights != "even":
            raise ValueError(f"level weights must be 17 numbers, None or 'even', got {weights!r}")
        w = np.ones(len(LEVELS))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(LEVELS),) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("level weights must be 17 positive numbers (T1..L5)")
    c = np.concatenate([[0.0], np.cumsum(w)])
    return c / c[-1]


def fraction_to_level_position(
    fraction: np.ndarray | float, weights: Sequence[float] | str | None = None
) -> np.ndarray | float:
    """Map a fraction of the spine length (0 = top of T1, 1 = bottom of L5) to ``p`` in [0, 17]."""
    b = level_boundaries(weights)
    out = np.interp(np.clip(fraction, 0.0, 1.0), b, np.arange(len(b), dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def level_name(position: float) -> str:
    """Name of the vertebra containing level position ``p`` (``p`` clipped to T1..L5)."""
    i = int(np.clip(np.floor(position), 0, len(LEVELS) - 1))
    return LEVELS[i]
