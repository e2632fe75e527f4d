"""Cobb angle from vertebra corner landmarks: the reference measurement.

The functions live in :mod:`r2mfnet.geometry` (the data layer needs them too, and must not import
``measure``); this module keeps the measurement package's name for them. Landmarks are ``(17, 4,
2)``: vertebrae T1..L5 top to bottom, corners TL, TR, BL, BR as pixel ``(x, y)``; the main Cobb
angle is the largest angle between two vertebra mid-lines (SpineWeb16's ``angles.csv`` column 1).
"""
from __future__ import annotations

from r2mfnet.geometry import check_corners, cobb_from_landmarks, vertebra_tilts_deg

__all__ = ["check_corners", "cobb_from_landmarks", "vertebra_tilts_deg"]
