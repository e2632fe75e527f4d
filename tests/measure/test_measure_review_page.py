"""The review page's flags and rows, on hand-written measurements (no images needed)."""
from __future__ import annotations

import json

import pytest

from r2mfnet.measure.review_flags import case_flags
from r2mfnet.measure.review_page import case_row, review_page_html


def _view(main, flags=(), upper="T5", lower="T12"):
    return {"measured": True, "main_angle_deg": main, "pt_angle_deg": 0.0, "mt_angle_deg": main,
            "tl_angle_deg": 0.0, "flags": list(flags),
            "curves": [{"angle_deg": main, "upper_level": upper, "lower_level": lower,
                        "apex_level": "T8", "side": "right"}]}


def _case(cid, views, flexibility=None):
    files = {v: {"overlay": f"{v}_overlay.png"} for v in views}
    return {"case_id": cid, "views": views, "files": {**files, "report": "report.png"},
            "flexibility": flexibility}


def test_flags_name_the_view_and_the_reason():
    case = _case("a", {"coronal": _view(95.0, ["dropped: bottom piece tilted 30 deg from its neighbour"]),
                       "left_bending": {"measured": False, "error": "the mask is empty"}},
                 {"curves": [{"flexibility": 1.6, "levels": "T5-T12", "coronal_angle_deg": 95.0}]})
    assert case_flags(case) == [
        "coronal: dropped: bottom piece tilted 30 deg from its neighbour",
        "coronal: main angle 95.0 deg is implausible (> 90)",
        "left_bending: not measured (the mask is empty)",
        "flexibility 160% of the T5-T12 curve is implausible",
    ]
    assert case_flags(_case("b", {"coronal": _view(30.0)})) == []


def test_a_view_measured_on_a_rebuilt_chain_is_flagged():
    rebuilt = {**_view(30.0), "centreline": {"parts_kept": 14, "chain_rebuilt": True}}
    assert case_flags(_case("a", {"coronal": rebuilt})) == [
        "coronal: the spine mask is broken for the usual chain rule; measured on the chain "
        "rebuilt from its heaviest top-to-bottom path of parts"]
    usual = {**_view(30.0), "centreline": {"parts_kept": 14, "chain_rebuilt": False}}
    assert case_flags(_case("b", {"coronal": usual})) == []


def test_page_orders_doubtful_first_then_by_angle_and_shows_whole_names():
    long_name = "sunhl-1th-10-Jan-2017-239 A AP"
    cases = [("small", _case("small", {"coronal": _view(12.0)})),
             ("big", _case("big", {"coronal": _view(40.0)})),
             (long_name, _case(long_name, {"coronal": _view(20.0, ["tilt jumps 35 deg between neighbouring vertebrae"])}))]
    page = review_page_html(cases)
    order = [page.index(f'id="{name}"') for name in (long_name, "big", "small")]
    assert order == sorted(order)
    assert long_name in page and "sunhl-1th-10-Jan-2017-239%20A%20AP/coronal_overlay.png" in page
    row = case_row(*cases[1])
    assert 'data-v="40.0">40.0 deg (coronal)' in row and "T5-T12 (apex T8, right)" in row
    flexible = _case("f", {"coronal": _view(40.0)},
                     {"curves": [{"flexibility": 0.55, "levels": "T5-T12", "best_view": "left_bending",
                                  "coronal_angle_deg": 40.0}]})
    assert ">55% (T5-T12, left_bending)</td>" in case_row("f", flexible)


def test_flip_tta_halves_that_disagree_by_more_than_10_deg_are_flagged():
    def with_halves(plain, mirrored):
        return {**_view(30.0), "tta_halves": {"plain_main_deg": plain, "mirrored_main_deg": mirrored}}

    assert case_flags(_case("a", {"coronal": with_halves(25.0, 35.5)})) == [
        "coronal: main angle 25.0 vs 35.5 deg between the flip-TTA halves (> 10 deg apart)"]
    assert case_flags(_case("b", {"coronal": with_halves(25.0, 35.0)})) == []  # 10 deg: not more
    assert case_flags(_case("c", {"coronal": with_halves(None, 30.0)})) == [
        "coronal: the plain flip-TTA half could not be measured"]


def test_tta_halves_entry_measures_each_half():
    import numpy as np

    from r2mfnet.measure.review_flags import tta_halves_entry
    from tests.measure.synth_spine import make_spine

    straight = make_spine().mask
    entry = tta_halves_entry(straight, np.zeros_like(straight))
    assert entry["plain_main_deg"] is not None and entry["plain_main_deg"] < 3.0
    assert entry["mirrored_main_deg"] is None and "empty" in entry["mirrored_error"]
    assert entry["difference_deg"] is None


def test_predict_writes_the_halves_and_the_page_flags_a_disagreement(tmp_path):
    import cv2
    import numpy as np

    from r2mfnet.apps.predict_output import run_predictions
    from r2mfnet.data.inputs import InputCase, InputView
    from tests.measure.synth_spine import bump, make_spine

    straight, curved = make_spine().mask, make_spine(bump(0.12, 0.5, 0.2)).mask
    cv2.imwrite(str(tmp_path / "a.png"), straight.astype(np.uint8) * 200)

    def get_mask(iv, raw):
        return raw > 100

    get_mask.with_halves = lambda iv, raw: (raw > 100, (raw > 100, curved))  # the mirrored half sees a curve
    case = InputCase("a", {"coronal": InputView("coronal", tmp_path / "a.png", "manifest")})
    run_predictions([case], tmp_path / "out", get_mask, progress=False)
    measurements = json.loads((tmp_path / "out" / "a" / "measurements.json").read_text())
    entry = measurements["views"]["coronal"]
    halves = entry["tta_halves"]
    assert halves["plain_main_deg"] < 3.0 and halves["mirrored_main_deg"] > 20.0
    assert halves["difference_deg"] == pytest.approx(halves["mirrored_main_deg"] - halves["plain_main_deg"], abs=0.02)
    assert [f for f in case_flags(measurements) if "flip-TTA" in f] == [
        f"coronal: main angle {halves['plain_main_deg']:.1f} vs {halves['mirrored_main_deg']:.1f} deg "
        "between the flip-TTA halves (> 10 deg apart)"]
    assert "flip-TTA halves" in (tmp_path / "out" / "index.html").read_text()
