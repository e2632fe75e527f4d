"""Per-vertebra Dice and identification rate, checked against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from r2mfnet.errors import MeasurementError
from r2mfnet.evaluation.vertebra_metrics import (
    VertebraMetric,
    identification,
    identification_rate,
    per_vertebra_dice,
)


def _gt():
    g = np.zeros((12, 4), np.uint8)
    g[0:3] = 1  # T1: 12 px
    g[4:7] = 2  # T2: 12 px
    g[8:11] = 3  # T3: 12 px
    return g


def test_perfect_prediction():
    g = _gt()
    d = per_vertebra_dice(g, g)
    assert d["T1"] == d["T2"] == d["T3"] == 1.0
    assert math.isnan(d["T4"]) and math.isnan(d["L5"])  # in neither map: undefined
    assert identification(g, g) == {"T1": True, "T2": True, "T3": True}
    assert identification_rate(g, g) == 1.0


def test_hand_computed_dice_and_identification():
    g = _gt()
    p = g.copy()
    p[2] = 0  # T1 loses a row: |P|=8, |G|=12, inter=8 -> Dice 16/20 = 0.8
    p[4:6] = 3  # two rows of T2 called T3: T2 |P|=4, inter=4 -> 8/16 = 0.5;
    #             T3 |P|=12+8=20, |G|=12, inter=12 -> 24/32 = 0.75
    p[11, 0] = 5  # a stray T5 pixel: |P|=1, |G|=0 -> Dice 0
    d = per_vertebra_dice(p, g)
    assert d["T1"] == pytest.approx(0.8)
    assert d["T2"] == pytest.approx(0.5)
    assert d["T3"] == pytest.approx(0.75)
    assert d["T5"] == 0.0
    ident = identification(p, g)
    # T1: 8/12 of G predicted T1, all of P on G -> yes. T2: 4/12 < 0.5 -> no.
    # T3: 12/12 of G, but only 12/20 of P on G (>= 0.5) -> yes.
    assert ident == {"T1": True, "T2": False, "T3": True}
    assert identification_rate(p, g) == pytest.approx(2 / 3)


def test_labels_shifted_by_one_level_are_not_identified():
    g = _gt()
    p = np.where(g > 0, g + 1, 0).astype(np.uint8)  # perfect outlines, every name one level off
    assert identification_rate(p, g) == 0.0
    d = per_vertebra_dice(p, g)
    assert d["T1"] == 0.0 and d["T2"] == 0.0 and d["T4"] == 0.0


def test_precision_condition():
    g = _gt()
    p = g.copy()
    p[g == 2] = 1  # T1 also covers T2: 12 of its 24 px on G_1 -> 0.5, still identified
    assert identification(p, g)["T1"] is True
    p[g == 3] = 1  # ... and T3: 12 of 36 px on G_1 < 0.5 -> no longer identified
    assert identification(p, g)["T1"] is False


def test_accumulator_pools_vertebrae():
    g = _gt()
    p = g.copy()
    p[4:7] = 0  # T2 missed
    m = VertebraMetric()
    r1 = m.update(g, g, "a")
    r2 = m.update(p, g, "b")
    assert r1["id_rate"] == 1.0 and r2["id_rate"] == pytest.approx(2 / 3)
    assert r2["mean_dice"] == pytest.approx((1 + 0 + 1) / 3)
    agg = m.aggregate()
    assert agg["n_images"] == 2 and agg["n_vertebrae"] == 6
    assert agg["identification_rate"] == pytest.approx(5 / 6)
    assert agg["dice_per_level"]["T2"] == pytest.approx(0.5)
    assert math.isnan(agg["dice_per_level"]["L1"])


def test_bad_inputs():
    with pytest.raises(MeasurementError, match="same size"):
        per_vertebra_dice(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8))
    with pytest.raises(MeasurementError, match="integers"):
        identification(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8))
    with pytest.raises(MeasurementError, match="0..17"):
        per_vertebra_dice(np.full((3, 3), 20, np.uint8), np.zeros((3, 3), np.uint8))
    assert math.isnan(identification_rate(np.zeros((3, 3), np.uint8), np.zeros((3, 3), np.uint8)))
