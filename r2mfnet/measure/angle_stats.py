"""How good are the angles measured from masks? The statistics, and one mask's angle triple.

This module holds what every Cobb evaluation computes with; the evaluations themselves (which
images, which mask sources, the tables) are above it, in :mod:`r2mfnet.evaluation.cobb_harness`.

References
    SpineWeb16: the experts' three angles of ``angles.csv`` (stored by the SpineWeb16
    preparation in each landmarks JSON as ``cobb_angles_deg``). They follow the AASCE challenge
    script's rule (:mod:`r2mfnet.measure.aasce`): angle 1 is the largest angle between any two
    vertebrae, angles 2 and 3 are the curves above and below it (or two above it), **not**
    anatomical PT / MT / TL-L regions. So the measured triple (:func:`measure_triple`) is that
    same rule applied to the mask's tilt profile
    (:func:`~r2mfnet.measure.aasce.aasce_angles_from_measurement`); angle 1 is then the
    measurement's ``tilt_range``, the definition ``docs/measure.md`` gives as matching
    ``angles.csv``. Synthetic sets: the generator's angles of each view (``cases.json``).
Measures (:func:`angle_stats`)
    SMAPE as defined by the AASCE challenge: the mean over images of
    ``sum|measured - reference| / sum(measured + reference)`` over the three angles, x 100 (an
    image whose six angles are all 0 counts as 0); mean absolute error, mean signed error
    (bias), largest error and Pearson correlation of angle 1 (the main angle); mean absolute
    error of angles 2 and 3. An image whose mask cannot be measured is counted (``n_failed``) and
    left out of the statistics.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from r2mfnet.errors import MeasurementError
from r2mfnet.measure.aasce import aasce_angles_from_measurement
from r2mfnet.measure.case import measure_view

# ----------------------------------------------------------------------------- statistics
def smape(measured: np.ndarray, reference: np.ndarray) -> float:
    """AASCE SMAPE in percent: mean over images of sum|a - b| / sum(a + b) over the angles.

    ``measured`` and ``reference`` are ``(N, K)`` (K = 3 for the challenge) or ``(N,)``.
    """
    a = np.asarray(measured, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape[0] == 0:
        return float("nan")
    num = np.abs(a - b).sum(axis=1)
    den = (a + b).sum(axis=1)
    per_image = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(per_image.mean() * 100.0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN for fewer than 3 pairs or a constant input."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def angle_stats(measured: Sequence[Sequence[float] | None], reference: Sequence[Sequence[float]]
                ) -> dict[str, Any]:
    """Statistics of measured angle triples against reference triples (``None`` = failed).

    Angle 1 of each triple is the main angle. Returns ``n``, ``n_failed``, ``smape_pct``,
    ``mae_main_deg``, ``bias_main_deg``, ``max_abs_main_deg``, ``pearson_main``,
    ``mae_angle2_deg``, ``mae_angle3_deg`` (floats rounded for reports; NaN when undefined).
    """
    pairs = [(m, r) for m, r in zip(measured, reference) if m is not None]
    n_failed = len(measured) - len(pairs)
    out: dict[str, Any] = {"n": len(pairs), "n_failed": n_failed}
    if not pairs:
        return {**out, **{k: float("nan") for k in ("smape_pct", "mae_main_deg", "bias_main_deg",
                                                     "max_abs_main_deg", "pearson_main",
                                                     "mae_angle2_deg", "mae_angle3_deg")}}
    a = np.array([p[0] for p in pairs], dtype=np.float64).reshape(len(pairs), -1)
    b = np.array([p[1] for p in pairs], dtype=np.float64).reshape(len(pairs), -1)
    err = a - b
    out.update(
        smape_pct=smape(a, b),
        mae_main_deg=float(np.abs(err[:, 0]).mean()),
        bias_main_deg=float(err[:, 0].mean()),
        max_abs_main_deg=float(np.abs(err[:, 0]).max()),
        pearson_main=pearson(a[:, 0], b[:, 0]),
        mae_angle2_deg=float(np.abs(err[:, 1]).mean()) if a.shape[1] > 1 else float("nan"),
        mae_angle3_deg=float(np.abs(err[:, 2]).mean()) if a.shape[1] > 2 else float("nan"),
    )
    return out


def round_for_json(obj: Any, nd: int = 3) -> Any:
    """Round floats for JSON; NaN becomes None (JSON has no NaN)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, nd)
    if isinstance(obj, dict):
        return {k: round_for_json(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_for_json(v, nd) for v in obj]
    return obj


# ----------------------------------------------------------------------------- measuring
def measure_triple(mask: np.ndarray, method: str, **kwargs: Any) -> tuple[list[float] | None, str | None]:
    """The three ``angles.csv``-rule angles of one mask, or ``(None, reason)``.

    ``kwargs`` go to the tilt method (e.g. ``anatomy=False`` for the end plates without the
    anatomical sanity rule)."""
    triple, info = measure_triple_info(mask, method, **kwargs)
    return triple, info.get("error")


def measure_triple_info(mask: np.ndarray, method: str, **kwargs: Any
                        ) -> tuple[list[float] | None, dict[str, Any]]:
    """:func:`measure_triple` with its info: ``{"error": reason}`` when unmeasurable,
    ``{"chain_rebuilt": True}`` when measured on a rebuilt chain of parts, else ``{}``."""
    vm = measure_view("coronal", mask, method=method, **kwargs)
    if vm.cobb is None or vm.centreline is None:
        return None, {"error": vm.error}
    try:
        triple = [float(x) for x in aasce_angles_from_measurement(vm.cobb, vm.centreline, mask.shape[0])]
    except MeasurementError as exc:
        return None, {"error": str(exc)}
    return triple, {"chain_rebuilt": True} if vm.centreline.chain_rebuilt else {}
