"""``merged_split="expected"``: merged vertebrae without necks cut by the expected segment height.

The masks are the straight column of tilted rectangles of the end-plate tests (17 vertebrae, so
the typical segment heights fit the drawn ones in the thoracic spine), with two or three
adjacent rectangles merged into one solid convex blob (their convex hull: no neck). The column
is straight, so the centreline's perpendicular is level and the default fallback reads about 0
deg where the rectangles are drawn at 12-14 deg.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from r2mfnet.errors import ConfigError
from r2mfnet.measure.case import measure_view
from r2mfnet.measure.landmarks import cobb_from_landmarks
from r2mfnet.measure.vertebrae import MERGED_SPLITS, cobb_from_mask_vertebrae, vertebra_tilts
from tests.measure.test_measure_eval_endplates import column

TILTS = [0, 2, 5, 9, 12, 14, 12, 8, 3, -2, -7, -11, -13, -12, -8, -4, -1]  # an S of tilts
"""Main Cobb angle 27 deg, between the 14 deg vertebra (index 5) and the -13 deg one (12)."""


def merged_column(merged: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The column with the rectangles ``merged`` (adjacent indices) filled into one convex blob."""
    mask, corners = column(TILTS)
    m = mask.astype(np.uint8)
    hull = cv2.convexHull(np.round(corners[list(merged)].reshape(-1, 2) * 16).astype(np.int32))
    cv2.fillPoly(m, [hull], 1, shift=4)
    return m.astype(bool), corners


def blob_tilts(mask: np.ndarray, merged_split: str, source: str) -> list[float]:
    """Tilts of the vertebrae measured with ``source`` (the blob's), top to bottom."""
    _, vts = vertebra_tilts(mask, merged_split=merged_split)
    assert all(v.source in ("shape", source) for v in vts)
    return [v.tilt_deg for v in vts if v.source == source]


def main_error(mask: np.ndarray, corners: np.ndarray, merged_split: str) -> float:
    """Absolute error of the measured main Cobb angle against the drawn rectangles'."""
    _, cobb = cobb_from_mask_vertebrae(mask, merged_split=merged_split)
    return abs(cobb.main_angle - cobb_from_landmarks(corners)[0])


def test_two_merged_vertebrae_are_cut_in_two_and_read_on_their_end_plates():
    mask, corners = merged_column((5, 6))  # drawn at 14 and 12 deg
    # default: the blob falls back to the centreline's tilt, level in this straight column
    fallback = blob_tilts(mask, "centreline", "centreline")
    assert len(fallback) == 2 and max(abs(t) for t in fallback) < 2.0
    # expected: two pieces, each read on its one real end plate (the other outline is the cut)
    split = blob_tilts(mask, "expected", "split")
    assert split == pytest.approx([14.0, 12.0], abs=1.5)
    assert main_error(mask, corners, "expected") < 1.0  # 27.5 deg measured, 27.0 drawn
    assert main_error(mask, corners, "centreline") > 4.0  # 21.4 deg


def test_three_merged_vertebrae_give_three_pieces_the_middle_one_has_only_cuts():
    mask, corners = merged_column((4, 5, 6))  # drawn at 12, 14 and 12 deg
    assert len(blob_tilts(mask, "centreline", "centreline")) == 3
    top, middle, bottom = blob_tilts(mask, "expected", "split")
    assert top == pytest.approx(12.0, abs=1.5) and bottom == pytest.approx(12.0, abs=1.5)
    # The middle piece has no end plate of its own: both its outlines are cuts perpendicular to
    # the centreline, so it reads the centreline's tilt, as the default fallback does.
    assert abs(middle) < 2.0
    # 25.7 deg measured against 21.4 by default (27.0 drawn)
    assert main_error(mask, corners, "expected") < main_error(mask, corners, "centreline") - 3.0


def test_the_default_is_the_centreline_fallback_and_separate_vertebrae_do_not_change():
    mask, _ = merged_column((5, 6))
    default = vertebra_tilts(mask)[1]
    assert default == vertebra_tilts(mask, merged_split="centreline")[1]
    assert [v.source for v in default].count("centreline") == 2
    plain, _ = column(TILTS)  # nothing merged: the switch changes nothing
    assert vertebra_tilts(plain, merged_split="expected")[1] == vertebra_tilts(plain)[1]


@pytest.mark.parametrize("bad", ["Expected", "levels", "", "expected\nmore"])
def test_a_bad_merged_split_is_a_one_line_config_error(bad):
    mask, _ = column(TILTS)
    with pytest.raises(ConfigError, match="merged_split") as info:
        vertebra_tilts(mask, merged_split=bad)
    assert "\n" not in str(info.value) and all(m in str(info.value) for m in MERGED_SPLITS)
    # not caught as a measurement failure of the view: a wrong setting stops the run
    with pytest.raises(ConfigError, match="merged_split"):
        measure_view("coronal", mask, method="vertebrae", merged_split=bad)
