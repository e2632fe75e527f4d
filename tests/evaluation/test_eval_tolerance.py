"""Boundary-F1 tolerance rules: fixed pixels, millimetres, fraction of the image height."""
from __future__ import annotations

import numpy as np
import pytest

from r2mfnet.training.run_config import EvalConfig, validate
from r2mfnet.errors import ConfigError
from r2mfnet.evaluation import BoundaryTolerance, SegmentationMetric


def test_resolve_rules_and_their_text():
    tol = BoundaryTolerance()  # defaults: 2.5 mm, else 0.5 % of the height
    assert tol.resolve((600, 200)) == (3.0, "0.5 % of height")
    assert tol.resolve((600, 200), 0.5) == (5.0, "2.5 mm")  # 2.5 mm / 0.5 mm per px
    assert tol.resolve((600, 200), (0.5, 2.0)) == (pytest.approx(2.5), "2.5 mm")  # geometric mean 1
    assert BoundaryTolerance(px=2.0).resolve((600, 200), 0.5) == (2.0, "2 px")
    assert BoundaryTolerance(mm=None).resolve((600, 200), 0.5) == (3.0, "0.5 % of height")
    assert BoundaryTolerance(height_fraction=0.0025).resolve((2400, 900)) == (6.0, "0.25 % of height")
    with pytest.raises(ValueError):
        tol.resolve((600, 200), 0.0)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"px": -1.0}, "eval.tau"), ({"mm": 0.0}, "eval.tau_mm"), ({"mm": float("nan")}, "eval.tau_mm"),
     ({"height_fraction": 0.0}, "eval.tau_height_fraction"),
     ({"height_fraction": 1.0}, "eval.tau_height_fraction"), ({"px": "two"}, "eval.tau")],
)
def test_invalid_tolerance_names_its_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        BoundaryTolerance(**kwargs)


def test_metric_uses_the_rule_per_case():
    # GT 4x4 square and the same square 2 px to the right (hand-computed in test_eval_metrics:
    # BF = 1/3 at 0 px, 2/3 at 1 px, 1 at 2 px). Image height 200 -> 0.5 % = 1 px.
    gt = np.zeros((200, 20), bool)
    gt[2:6, 2:6] = True
    pred = np.roll(gt, 2, axis=1)
    m = SegmentationMetric()
    r = m.update(pred, gt, "a", "coronal")
    assert r["boundary_tau_px"] == 1.0 and r["boundary_tolerance"] == "0.5 % of height"
    assert r["boundary_f1"] == pytest.approx(2 / 3)
    r = m.update(pred, gt, "b", "coronal", spacing_mm=1.25)  # 2.5 mm = 2 px
    assert r["boundary_tau_px"] == 2.0 and r["boundary_tolerance"] == "2.5 mm"
    assert r["boundary_f1"] == pytest.approx(1.0)
    r = SegmentationMetric(tau=0).update(pred, gt, "c", "coronal", spacing_mm=1.25)
    assert r["boundary_tolerance"] == "0 px" and r["boundary_f1"] == pytest.approx(1 / 3)


def test_config_defaults_and_old_fixed_pixel_setting():
    ev = EvalConfig()
    assert (ev.tau, ev.tau_mm, ev.tau_height_fraction) == (None, 2.5, 0.005)
    run = validate({"model": {"name": "unet"}, "eval": {"tau": 2}})  # eval.tau=2 still means 2 px
    assert run.eval.tau == 2.0
    with pytest.raises(ConfigError, match=r"eval\.tau_mm"):
        validate({"model": {"name": "unet"}, "eval": {"tau_mm": -1.0}})
    with pytest.raises(ConfigError, match="tau_fraction"):  # the removed diagonal option is refused
        validate({"model": {"name": "unet"}, "eval": {"tau_fraction": 0.0075}})
