"""Patient-level splits: no leakage, deterministic, fractions respected, explicit splits win."""
from __future__ import annotations

from pathlib import Path

import pytest

from r2mfnet.data.manifest import ViewRecord
from r2mfnet.data.splits import kfold_by_patient, split_by_patient
from r2mfnet.data.views import VIEWS
from r2mfnet.errors import ConfigError, DataError


def records(n_patients=40, cases_per_patient=2, explicit=None):
    out = []
    explicit = explicit or {}
    for p in range(n_patients):
        for c in range(cases_per_patient):
            for v in VIEWS:
                out.append(
                    ViewRecord(
                        case_id=f"p{p}c{c}", view=v, image=Path(f"/x/p{p}c{c}{v}.png"),
                        mask=Path(f"/x/m{p}c{c}{v}.png"), patient_id=f"p{p}", split=explicit.get(p),
                    )
                )
    return out


def patients(recs):
    return {r.patient_id for r in recs}


def test_no_leakage_and_fractions():
    recs = records(40)
    s = split_by_patient(recs, 0.15, 0.15, seed=0)
    assert set(s) == {"train", "val", "test"}
    tr, va, te = (patients(s[k]) for k in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(tr) + len(va) + len(te) == 40
    assert sum(len(v) for v in s.values()) == len(recs)
    assert len(va) == 6 and len(te) == 6  # round(0.15 * 40)
    # every case keeps all its views together
    for part in s.values():
        cases = {r.case_id for r in part}
        assert len(part) == 3 * len(cases)


def test_deterministic_and_seed_dependent():
    recs = records(30)
    a = split_by_patient(recs, seed=1)
    b = split_by_patient(list(reversed(recs)), seed=1)
    assert patients(a["test"]) == patients(b["test"])
    assert [r.key for r in a["train"]] == [r.key for r in split_by_patient(recs, seed=1)["train"]]
    c = split_by_patient(recs, seed=2)
    assert patients(a["test"]) != patients(c["test"])


def test_explicit_split_wins():
    recs = records(20, explicit={0: "test", 1: "test", 2: "val", 3: "train"})
    s = split_by_patient(recs, 0.2, 0.2, seed=0)
    assert {"p0", "p1"} <= patients(s["test"]) and "p2" in patients(s["val"]) and "p3" in patients(s["train"])
    assert len(patients(s["test"])) == 4 and len(patients(s["val"])) == 4


def test_small_sets_still_get_val_and_test():
    s = split_by_patient(records(3, 1), 0.15, 0.15, seed=0)
    assert all(len(patients(s[k])) == 1 for k in ("train", "val", "test"))
    s1 = split_by_patient(records(1, 1), 0.15, 0.15)
    assert len(s1["train"]) == 3 and not s1["val"] and not s1["test"]


def test_conflicting_explicit_splits_rejected():
    recs = records(2, 1)
    recs[0] = ViewRecord(**{**recs[0].__dict__, "split": "test"})
    recs[1] = ViewRecord(**{**recs[1].__dict__, "split": "train"})
    with pytest.raises(DataError, match="several explicit splits"):
        split_by_patient(recs)


def test_bad_fractions():
    with pytest.raises(ConfigError):
        split_by_patient(records(5), 0.6, 0.5)
    with pytest.raises(ConfigError):
        split_by_patient(records(5), -0.1, 0.1)


def test_kfold_partition():
    recs = records(23, explicit={0: "test"})
    vals = []
    for fold in range(5):
        f = kfold_by_patient(recs, k=5, fold=fold, seed=3)
        assert not (patients(f["train"]) & patients(f["val"]))
        assert patients(f["test"]) == {"p0"}
        assert len(patients(f["train"])) + len(patients(f["val"])) == 22
        vals.append(patients(f["val"]))
    assert set().union(*vals) == patients(recs) - {"p0"}
    assert sum(len(v) for v in vals) == 22  # folds are disjoint
    assert max(len(v) for v in vals) - min(len(v) for v in vals) <= 1
    assert kfold_by_patient(recs, 5, 2, seed=3)["val"] == kfold_by_patient(recs, 5, 2, seed=3)["val"]
    with pytest.raises(ConfigError):
        kfold_by_patient(recs, 1, 0)
    with pytest.raises(ConfigError):
        kfold_by_patient(recs, 5, 5)
    with pytest.raises(ConfigError):
        kfold_by_patient(records(3), 5, 0)
