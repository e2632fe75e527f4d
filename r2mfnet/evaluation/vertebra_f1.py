"""Separated-vertebra F1: does the mask keep neighbouring vertebrae apart?

Dice and boundary F1 barely move when a mask bridges the disc between two vertebrae, yet the
end-plate Cobb method needs separate vertebrae (docs/measurements.md). This metric
counts vertebrae as connected components and matches them one to one (exact rules in
``docs/metrics.md``, section "Separated vertebrae"):

Components
    4-connected components (``scipy.ndimage.label`` with the cross element) of the binary masks.
    In the ground truth of the synthetic generator and of SpineWeb16 each vertebra is one such
    component (17 per image) unless two drawn vertebrae touch (SpineWeb16: 42 of 481 images; the
    touching ones are then one component, in the ground truth and in the count). 8-connectivity
    joins more of them (diagonal contacts across a thin disc), so it is not used.
Matching
    A ground-truth component and a predicted one match when their IoU is **> 0.5**. Above 0.5 each
    component can have at most one partner (two disjoint components cannot both cover more than
    half of a third), so the matching is unique without any assignment step, as in COCO panoptic
    quality. ``vertebra_f1 = 2 TP / (n_gt + n_pred)``; 1.0 when both masks are empty, 0.0 when
    exactly one is.
Diagnostics (per ground-truth component; not a partition, see ``docs/metrics.md``)
    merged: some predicted component covers >= 1/2 of it and >= 1/2 of another GT component;
    split: >= 2 predicted components each cover >= 1/4 of it;
    missed: < 1/2 of its pixels are predicted foreground (by any component).

All counts come from one contingency table of (GT label, predicted label) pairs built with
``np.bincount``: two labelling passes and one pass over the foreground pixels, fast enough for
3000 x 1200 radiographs.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from r2mfnet.evaluation._checks import check_pair

__all__ = ["MERGE_FRACTION", "SPLIT_FRACTION", "components", "vertebra_f1", "vertebra_match"]

MERGE_FRACTION = 0.5
"""A predicted component merges GT components it covers by at least this share of each."""

SPLIT_FRACTION = 0.25
"""A GT component is split when >= 2 predicted components each cover at least this share of it
(a quarter: a piece the size of a vertebra's upper or lower quarter, not a speck)."""


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a bool mask: ``(labels 0..n, n)``."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def _table(lg: np.ndarray, ng: int, lp: np.ndarray, npred: int, fg: np.ndarray) -> np.ndarray:
    """Pixel counts ``[ng + 1, npred + 1]`` of (GT label, predicted label) pairs; row/col 0 = none."""
    pair = lg[fg].astype(np.int64) * (npred + 1) + lp[fg]
    return np.bincount(pair, minlength=(ng + 1) * (npred + 1)).reshape(ng + 1, npred + 1)


def vertebra_match(pred: np.ndarray, gt: np.ndarray) -> dict[str, float | int]:
    """Component matching of one binary prediction against its binary ground truth.

    Returns ``{"vertebra_f1", "vertebrae_gt", "vertebrae_pred", "vertebrae_matched",
    "vertebrae_merged", "vertebrae_split", "vertebrae_missed"}`` (rules in the module
    docstring). For vertebra label maps pass ``labels > 0``: the union is what is scored.
    Raises ``ValueError`` for non-binary or mismatched masks.
    """
    p, g = check_pair(pred, gt)
    lg, ng = components(g)
    lp, npred = components(p)
    table = _table(lg, ng, lp, npred, g | p)
    inter = table[1:, 1:]  # [ng, npred] overlaps
    area_g = table[1:, :].sum(axis=1)
    area_p = table[:, 1:].sum(axis=0)
    union = area_g[:, None] + area_p[None, :] - inter
    matched = int(np.count_nonzero(2 * inter > union))  # IoU > 0.5, exact in integers
    total = ng + npred
    f1 = 1.0 if total == 0 else 2.0 * matched / total
    covers = inter >= MERGE_FRACTION * area_g[:, None]  # pred j covers >= half of GT i
    merging = covers.sum(axis=0) >= 2  # pred components covering >= 2 GT components
    merged = covers[:, merging].any(axis=1)
    split = (inter >= SPLIT_FRACTION * area_g[:, None]).sum(axis=1) >= 2
    missed = inter.sum(axis=1) < 0.5 * area_g
    return {
        "vertebra_f1": f1,
        "vertebrae_gt": ng,
        "vertebrae_pred": npred,
        "vertebrae_matched": matched,
        "vertebrae_merged": int(merged.sum()),
        "vertebrae_split": int(split.sum()),
        "vertebrae_missed": int(missed.sum()),
    }


def vertebra_f1(pred: np.ndarray, gt: np.ndarray) -> float:
    """``2 TP / (n_gt + n_pred)`` over 4-connected components matched at IoU > 0.5."""
    return float(vertebra_match(pred, gt)["vertebra_f1"])
