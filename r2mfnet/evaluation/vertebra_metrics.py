"""Vertebra-level segmentation metrics: per-vertebra Dice and identification rate.

Inputs are integer label maps of one image (0 background, 1..17 = T1..L5), prediction and ground
truth at the same (original) resolution.

Per-vertebra Dice
    For each level ``k``: ``2 |P_k & G_k| / (|P_k| + |G_k|)`` with ``P_k``/``G_k`` the pixels
    labelled ``k``. A level absent from both maps is undefined (NaN, left out of means); present
    in one only, it scores 0.
Identification
    A ground-truth vertebra ``k`` is **identified** when the prediction puts the right label on
    it and not elsewhere: at least half of ``G_k`` is predicted ``k`` **and** at least half of
    ``P_k`` lies on ``G_k`` (both the recall and the precision of label ``k`` are >= 0.5, hence
    its Dice is >= 0.5 too; ``min_overlap`` changes the 0.5). The identification rate is the
    fraction of ground-truth vertebrae identified. A vertebra found but named one level off
    (e.g. every label shifted by one) is not identified, however good its outline.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from r2mfnet.data.views import LEVELS
from r2mfnet.errors import MeasurementError

__all__ = [
    "VertebraMetric",
    "identification",
    "identification_rate",
    "per_vertebra_dice",
]


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape or p.ndim != 2:
        raise MeasurementError(f"label maps must be 2-D and the same size, got {p.shape} and {g.shape}")
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.dtype.kind not in "iub":
            raise MeasurementError(f"{name} label map must hold integers, got {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > len(LEVELS)):
            raise MeasurementError(f"{name} labels must be 0..{len(LEVELS)}, got {a.min()}..{a.max()}")
    return p.astype(np.int64, copy=False), g.astype(np.int64, copy=False)


def _counts(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Confusion counts ``[18, 18]``: rows ground truth, columns prediction."""
    n = len(LEVELS) + 1
    return np.bincount((g * n + p).ravel(), minlength=n * n).reshape(n, n)


def per_vertebra_dice(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``{level: Dice}`` for T1..L5 (NaN where the level is in neither map)."""
    p, g = _pair(pred, gt)
    c = _counts(p, g)
    out = {}
    for k, name in enumerate(LEVELS, start=1):
        denom = c[k, :].sum() + c[:, k].sum()
        out[name] = float(2.0 * c[k, k] / denom) if denom > 0 else float("nan")
    return out


def identification(pred: np.ndarray, gt: np.ndarray, min_overlap: float = 0.5) -> dict[str, bool]:
    """``{level: identified}`` for every level present in the ground truth (module docstring)."""
    p, g = _pair(pred, gt)
    c = _counts(p, g)
    out = {}
    for k, name in enumerate(LEVELS, start=1):
        g_k, p_k = int(c[k, :].sum()), int(c[:, k].sum())
        if g_k == 0:
            continue
        hit = int(c[k, k])
        out[name] = bool(p_k > 0 and hit >= min_overlap * g_k and hit >= min_overlap * p_k)
    return out


def identification_rate(pred: np.ndarray, gt: np.ndarray, min_overlap: float = 0.5) -> float:
    """Fraction of ground-truth vertebrae identified (NaN when the ground truth has none)."""
    ident = identification(pred, gt, min_overlap)
    return float(np.mean(list(ident.values()))) if ident else float("nan")


class VertebraMetric:
    """Accumulates per-image rows; :meth:`aggregate` pools them.

    ``update(pred, gt, case_id, view="")`` adds one row: ``dice`` per level, ``mean_dice`` (over
    levels defined in this image), ``identified`` per ground-truth level, ``id_rate``.
    """

    def __init__(self, min_overlap: float = 0.5) -> None:
        self.min_overlap = float(min_overlap)
        self._rows: list[dict[str, Any]] = []

    def update(self, pred: np.ndarray, gt: np.ndarray, case_id: str, view: str = "") -> dict[str, Any]:
        dice = per_vertebra_dice(pred, gt)
        ident = identification(pred, gt, self.min_overlap)
        defined = [v for v in dice.values() if not math.isnan(v)]
        row = {
            "case_id": case_id,
            "view": view,
            "dice": dice,
            "mean_dice": float(np.mean(defined)) if defined else float("nan"),
            "identified": ident,
            "id_rate": float(np.mean(list(ident.values()))) if ident else float("nan"),
        }
        self._rows.append(row)
        return row

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def aggregate(self, rows: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Pooled results: mean Dice per level, mean per-image Dice, and the identification rate
        over all ground-truth vertebrae of all images (each vertebra counts once)."""
        rows = list(self._rows if rows is None else rows)
        per_level = {}
        for name in LEVELS:
            vals = [r["dice"][name] for r in rows if not math.isnan(r["dice"][name])]
            per_level[name] = float(np.mean(vals)) if vals else float("nan")
        flags = [f for r in rows for f in r["identified"].values()]
        images = [r["mean_dice"] for r in rows if not math.isnan(r["mean_dice"])]
        return {
            "n_images": len(rows),
            "mean_dice": float(np.mean(images)) if images else float("nan"),
            "dice_per_level": per_level,
            "n_vertebrae": len(flags),
            "identification_rate": float(np.mean(flags)) if flags else float("nan"),
        }
