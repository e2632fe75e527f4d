"""Repair one kind of error of a predicted mask from the ground truth, leaving the rest as it is.

Why
    The error budget (:mod:`r2mfnet.evaluation.cobb_budget`) asks how much of the angle error
    each kind of mask error causes. Repairing that kind alone from the ground-truth vertebra
    label map, and measuring again, gives its share. Each repair changes only what its name says:
``remove_extra_parts``
    Predicted parts (8-connected, as the measurement sees them) of which less than
    :data:`EXTRA_OVERLAP` lies on a ground-truth vertebra are removed: pieces of the sacrum
    below L5, of C7 above T1, of ribs or pelvis.
``split_merged``
    The prediction is cut (``cut_px`` wide) along the lines where the nearest ground-truth
    vertebra changes (the middle of each disc, the Voronoi boundaries of the vertebrae), inside
    the spine only: vertebrae the model joined through a disc become separate parts again.
``restore_missing``
    Ground-truth vertebrae of which the prediction covers less than :data:`MISSING_COVER` of the
    area are painted in: vertebrae (often the end ones, T1 and L5) the model missed.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

EXTRA_OVERLAP = 0.1
"""A predicted part with less than this share of its pixels on the ground truth is extra."""
MISSING_COVER = 0.5
"""A ground-truth vertebra covered by less than this share is missing (vertebra F1's rule)."""

_EIGHT = np.ones((3, 3), dtype=bool)


def remove_extra_parts(pred: np.ndarray, gt_labels: np.ndarray, overlap: float = EXTRA_OVERLAP) -> np.ndarray:
    """``pred`` without the parts lying (almost) entirely off the ground-truth vertebrae."""
    pred = np.asarray(pred, dtype=bool)
    parts, n = ndimage.label(pred, structure=_EIGHT)
    if n == 0:
        return pred.copy()
    area = np.bincount(parts.ravel(), minlength=n + 1)
    on_gt = np.bincount(parts.ravel(), weights=(np.asarray(gt_labels) > 0).ravel(), minlength=n + 1)
    keep = on_gt >= overlap * np.maximum(area, 1)
    keep[0] = False
    return keep[parts]


def split_merged(pred: np.ndarray, gt_labels: np.ndarray, cut_px: int = 3) -> np.ndarray:
    """``pred`` cut along the boundaries between the regions nearest to each GT vertebra."""
    pred = np.asarray(pred, dtype=bool)
    labels = np.asarray(gt_labels)
    if labels.max() == 0:
        return pred.copy()
    _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    nearest = labels[iy, ix]
    boundary = np.zeros_like(pred)
    boundary[:-1] |= nearest[:-1] != nearest[1:]
    boundary[:, :-1] |= nearest[:, :-1] != nearest[:, 1:]
    boundary &= labels == 0  # only in the discs: never cut a ground-truth vertebra itself
    if cut_px > 1:
        boundary = ndimage.binary_dilation(boundary, iterations=cut_px // 2) & (labels == 0)
    return pred & ~boundary


def restore_missing(pred: np.ndarray, gt_labels: np.ndarray, cover: float = MISSING_COVER) -> np.ndarray:
    """``pred`` with every ground-truth vertebra it covers less than ``cover`` of painted in."""
    pred = np.asarray(pred, dtype=bool)
    labels = np.asarray(gt_labels)
    n = int(labels.max())
    area = np.bincount(labels.ravel(), minlength=n + 1)
    covered = np.bincount(labels.ravel(), weights=pred.ravel(), minlength=n + 1)
    missing = (covered < cover * area) & (area > 0)
    missing[0] = False
    return pred | missing[labels]


def missing_count(pred: np.ndarray, gt_labels: np.ndarray, cover: float = MISSING_COVER) -> int:
    """How many ground-truth vertebrae ``pred`` misses (by :func:`restore_missing`'s rule)."""
    labels = np.asarray(gt_labels)
    n = int(labels.max())
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    covered = np.bincount(labels.ravel(), weights=np.asarray(pred, dtype=bool).ravel(), minlength=n + 1)[1:]
    return int(((covered < cover * area) & (area > 0)).sum())
