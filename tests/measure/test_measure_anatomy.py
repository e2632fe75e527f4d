"""The anatomical sanity rule: a sacrum piece below L5 dropped, doubtful results flagged."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from r2mfnet.measure.sanity import check_anatomy
from r2mfnet.measure.annotate import side_by_side, wrap_text, FONT
from r2mfnet.measure.vertebrae import VertebraTilt, cobb_from_mask_vertebrae

from tests.measure.synth_spine import make_spine


def _spine(tilts, widths=None):
    widths = widths or [30.0] * len(tilts)
    return [VertebraTilt(50.0, 10.0 * i, float(t), float(i), "shape", 10.0, float(w))
            for i, (t, w) in enumerate(zip(tilts, widths))]


def test_more_than_17_drops_the_steep_bottom_piece_and_says_so():
    check = check_anatomy(_spine([0.0] * 17 + [30.0]))
    assert len(check.kept) == 17 and all(v.tilt_deg == 0.0 for v in check.kept)
    assert [v.tilt_deg for v, _ in check.dropped] == [30.0]
    assert check.flags == ("dropped: bottom piece tilted 30 deg from its neighbour",)


def test_two_sacrum_pieces_and_a_wide_one_go_until_17_remain():
    # 19 pieces: the last two steep; then 17, all in line: nothing more goes.
    check = check_anatomy(_spine([0.0] * 17 + [10.0, 40.0]))
    assert len(check.kept) == 17
    assert [v.tilt_deg for v, _ in check.dropped] == [40.0, 10.0]  # 40 out of line; then forced
    wide = check_anatomy(_spine([0.0] * 18, widths=[30.0] * 17 + [60.0]))
    assert wide.dropped[0][1] == "dropped: bottom piece 2.00 x its neighbour's width"


def test_17_or_fewer_are_kept_but_flagged():
    check = check_anatomy(_spine([0.0] * 16 + [25.0]))
    assert len(check.kept) == 17 and not check.dropped
    assert check.flags == ("not dropped: bottom piece tilted 25 deg from its neighbour",)
    trimmed = check_anatomy(_spine([0.0] * 16 + [25.0]), trim_ends=True)
    assert len(trimmed.kept) == 16
    jump = check_anatomy(_spine([0, 0, 0, 0, 35, 35, 35, 35, 35, 35, 35, 35]))
    assert jump.flags == ("tilt jumps 35 deg between neighbouring vertebrae",)
    few = check_anatomy(_spine([0.0] * 5))
    assert few.flags == ("only 5 vertebrae measured (an end vertebra may be missing)",)
    assert check_anatomy(_spine([0.0, 2.0, 4.0] * 5)).flags == ()


def test_mask_with_a_sacrum_piece_measures_as_without_it():
    """A straight synthetic spine plus a piece tilted 28 deg below L5: without the rule the piece
    sets the angle; with it the angle is the spine's (0 deg) and the result is flagged."""
    spine = make_spine(height=420)
    mask = spine.mask.astype(np.uint8)
    bottom = spine.corners[16, 2:, 1].max()
    box = cv2.boxPoints(((mask.shape[1] / 2, bottom + 22), (40, 20), 28.0))
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    _, raw = cobb_from_mask_vertebrae(mask.astype(bool), anatomy=False)
    _, ruled = cobb_from_mask_vertebrae(mask.astype(bool))
    assert raw.tilt_range > 20.0
    assert ruled.tilt_range < 3.0
    assert any(f.startswith("dropped: bottom piece tilted") for f in ruled.flags)
    assert ruled.to_dict()["flags"] == list(ruled.flags)


def test_long_title_wraps_so_the_whole_name_is_drawn():
    title = "case sunhl-1th-10-Jan-2017-239 A AP | coronal main Cobb 12.3 deg | predicted masks"
    lines = wrap_text(title, 0.5, 1, 120)
    assert all(cv2.getTextSize(line, FONT, 0.5, 1)[0][0] <= 120 for line in lines)
    assert "".join(lines).replace(" ", "").replace("|", "") == title.replace(" ", "").replace("|", "")
    narrow = np.zeros((200, 40, 3), np.uint8)
    one = side_by_side({"coronal": narrow}, title="x")
    wrapped = side_by_side({"left_bending": narrow}, title=title)
    assert wrapped.shape[0] > one.shape[0] and wrapped.shape[1] == one.shape[1]
