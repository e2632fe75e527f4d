"""Patient-level splits: the views (and cases) of one patient never straddle splits.

Records are grouped by ``patient_id`` (which defaults to ``case_id``, so the three views of one
case always stay together). A patient with an explicit ``split`` in the manifest keeps it; the
others are shuffled with a seeded generator and dealt out so that the overall patient fractions
approach the requested ones. Record order inside each split follows the input order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from r2mfnet.data.manifest import SPLITS, ViewRecord
from r2mfnet.errors import ConfigError, DataError

__all__ = ["split_by_patient", "kfold_by_patient", "group_by_patient", "split_records", "stored_split"]


def group_by_patient(records: Sequence[ViewRecord]) -> dict[str, list[ViewRecord]]:
    """``{patient_id: [records]}`` in first-seen order."""
    groups: dict[str, list[ViewRecord]] = {}
    for r in records:
        groups.setdefault(r.patient_id or r.case_id, []).append(r)
    return groups


def _explicit_split(patient: str, recs: list[ViewRecord]) -> str | None:
    splits = {r.split for r in recs if r.split}
    if len(splits) > 1:
        raise DataError(
            f"patient '{patient}' has records in several explicit splits ({', '.join(sorted(splits))}); "
            "all views and cases of one patient must share a split"
        )
    return splits.pop() if splits else None


def _fraction(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not (0.0 <= v < 1.0):
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return v


def split_by_patient(
    records: Sequence[ViewRecord],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> dict[str, list[ViewRecord]]:
    """Split records into ``{"train", "val", "test"}`` by patient.

    Explicit splits win. The remaining patients fill val and test up to
    ``round(fraction * number_of_patients)`` each (at least one patient for a non-zero fraction
    while at least one unassigned patient is left for train); the rest go to train.
    Deterministic for a given ``seed`` and input set (independent of input order).
    """
    vf = _fraction("val_fraction", val_fraction)
    tf = _fraction("test_fraction", test_fraction)
    if vf + tf >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must be < 1 (got {vf} + {tf}); nothing would be left "
            "for training"
        )
    groups = group_by_patient(records)
    assignment: dict[str, str] = {}
    free: list[str] = []
    for patient, recs in groups.items():
        s = _explicit_split(patient, recs)
        if s is None:
            free.append(patient)
        else:
            assignment[patient] = s
    n_total = len(groups)
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}
    rng = np.random.default_rng(seed)
    order = sorted(free)
    order = [order[i] for i in rng.permutation(len(order))]

    want: dict[str, int] = {}
    remaining = len(order)
    for name, frac in (("test", tf), ("val", vf)):
        target = int(round(frac * n_total)) - counts[name]
        if frac > 0 and counts[name] == 0 and target < 1:
            target = 1
        target = max(0, min(target, remaining - 1 if remaining > 1 else 0))
        want[name] = target
        remaining -= target
    pos = 0
    for name in ("test", "val"):
        for patient in order[pos : pos + want[name]]:
            assignment[patient] = name
        pos += want[name]
    for patient in order[pos:]:
        assignment[patient] = "train"

    out: dict[str, list[ViewRecord]] = {s: [] for s in SPLITS}
    for r in records:
        out[assignment[r.patient_id or r.case_id]].append(r)
    return out


def kfold_by_patient(
    records: Sequence[ViewRecord], k: int, fold: int, seed: int = 0
) -> dict[str, list[ViewRecord]]:
    """K-fold cross-validation by patient: fold ``fold`` of ``k`` is ``val``, the rest ``train``.

    Records with an explicit ``split == "test"`` are held out of every fold and returned under
    ``"test"``; explicit ``train``/``val`` labels are ignored (the folds reassign them).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not (0 <= fold < k):
        raise ConfigError(f"fold must be an integer in [0, {k - 1}], got {fold!r}")
    groups = group_by_patient(records)
    test_patients = set()
    for patient, recs in groups.items():
        if _explicit_split(patient, recs) == "test":
            test_patients.add(patient)
    pool = sorted(p for p in groups if p not in test_patients)
    if len(pool) < k:
        raise ConfigError(
            f"k={k} folds need at least {k} patients outside the test split, found {len(pool)}"
        )
    rng = np.random.default_rng(seed)
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    folds = np.array_split(np.arange(len(shuffled)), k)
    val_patients = {shuffled[i] for i in folds[fold]}
    out: dict[str, list[ViewRecord]] = {"train": [], "val": [], "test": []}
    for r in records:
        p = r.patient_id or r.case_id
        if p in test_patients:
            out["test"].append(r)
        elif p in val_patients:
            out["val"].append(r)
        else:
            out["train"].append(r)
    return out


def split_records(
    records: Sequence[ViewRecord], val_fraction: float = 0.15, test_fraction: float = 0.15,
    seed: int = 0, num_folds: int = 1, fold: int = 0,
) -> dict[str, list[ViewRecord]]:
    """The training run's ``train``/``val``/``test`` split: by patient, then, with
    ``num_folds > 1``, fold ``fold`` of the train + val patients as ``val`` (test unchanged).

    One function for the trainer and for every application that recomputes a checkpoint's split
    from its stored data config, so that a fold's validation patients are the ones it held out.
    """
    splits = split_by_patient(records, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    if num_folds > 1:
        if not 0 <= fold < num_folds:
            raise ConfigError(f"data.split.fold must be in [0, {num_folds}), got {fold}")
        folded = kfold_by_patient(splits["train"] + splits["val"], k=num_folds, fold=fold, seed=seed)
        splits = {"train": folded["train"], "val": folded["val"], "test": splits["test"]}
    return splits


def stored_split(records: Sequence[ViewRecord], split_config: dict) -> dict[str, list[ViewRecord]]:
    """:func:`split_records` from a checkpoint's stored ``data.split`` section (its defaults
    for absent keys, as the trainer's config has them)."""
    sp = split_config or {}
    return split_records(records, val_fraction=float(sp.get("val_fraction", 0.15)),
                         test_fraction=float(sp.get("test_fraction", 0.15)), seed=int(sp.get("seed", 0)),
                         num_folds=int(sp.get("num_folds", 1) or 1), fold=int(sp.get("fold", 0) or 0))
