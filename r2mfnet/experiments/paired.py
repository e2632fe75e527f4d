"""Paired differences between two models' per-image scores, with a patient-level bootstrap.

Why paired: every model of a comparison is scored on the same held-out images, and image
difficulty varies far more than the models do (on SpineWeb16 the per-image Dice SD is about 0.08
while the models' means differ by about 0.01). The SD columns of the results table therefore say
nothing about whether two models differ; the mean of the per-image *differences* and its
confidence interval do.

Why resample patients, not images: images of one patient (several dates, several views) are
correlated, so an image-level bootstrap would give intervals that are too narrow.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from r2mfnet.errors import DataError


@dataclass(frozen=True)
class PairedDifference:
    """``mean`` of (other - reference) per image, its 95% bootstrap interval, and how often
    the reference scored higher (``reference_better``, a fraction of images)."""

    n_images: int
    n_patients: int
    mean: float
    ci_low: float
    ci_high: float
    reference_better: float


def read_per_case(path: str | Path, metric: str) -> dict[tuple[str, str], float]:
    """``{(case_id, view): value}`` from an evaluation's ``metrics_per_case.csv``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"'{path}' does not exist: the run has no evaluation")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and metric not in rows[0]:
        raise DataError(f"'{path}' has no column '{metric}' (columns: {', '.join(rows[0])})")
    return {(r["case_id"], r["view"]): float(r[metric]) for r in rows if r[metric] not in ("", "nan")}


def paired_difference(
    reference: Mapping[tuple[str, str], float],
    other: Mapping[tuple[str, str], float],
    patient_of: Mapping[str, str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """Mean of ``other - reference`` over the images both scored, bootstrapped over patients.

    ``patient_of`` maps a case id to its patient (missing: the case is its own patient).
    """
    keys = sorted(set(reference) & set(other))
    if not keys:
        raise DataError("the two runs share no scored image: were they evaluated on the same split?")
    diffs = np.array([other[k] - reference[k] for k in keys])
    patient_of = patient_of or {}
    patients = np.array([patient_of.get(case, case) for case, _ in keys])
    unique, index = np.unique(patients, return_inverse=True)
    sums = np.bincount(index, weights=diffs)
    counts = np.bincount(index)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(unique), size=(n_boot, len(unique)))
    boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    return PairedDifference(
        n_images=len(keys), n_patients=len(unique), mean=float(diffs.mean()),
        ci_low=float(low), ci_high=float(high), reference_better=float(np.mean(diffs < 0)),
    )


def patients_from_manifest(path: str | Path) -> dict[str, str]:
    """``{case_id: patient_id}`` from a manifest CSV (empty patient ids are left out)."""
    with Path(path).open(newline="") as handle:
        return {r["case_id"]: r["patient_id"] for r in csv.DictReader(handle) if r.get("patient_id")}
