"""The comparison runner: resumable runs, tables only from saved results, paired differences."""
from __future__ import annotations

import json

import pytest

from r2mfnet.errors import DataError
from r2mfnet.experiments import compare
from r2mfnet.experiments.paired import paired_difference


def test_paired_difference_hand_computed():
    ref = {("a", "coronal"): 0.8, ("b", "coronal"): 0.6, ("c", "coronal"): 0.9, ("d", "coronal"): 0.5}
    other = {("a", "coronal"): 0.7, ("b", "coronal"): 0.7, ("c", "coronal"): 0.9}  # d not scored
    d = paired_difference(ref, other)
    assert d.n_images == 3 and d.n_patients == 3
    assert d.mean == pytest.approx(0.0)
    assert d.reference_better == pytest.approx(1 / 3)
    assert d.ci_low < 0 < d.ci_high

    shifted = {k: v - 0.05 for k, v in ref.items()}
    s = paired_difference(ref, shifted)
    assert (s.mean, s.ci_low, s.ci_high) == pytest.approx((-0.05, -0.05, -0.05))
    assert s.reference_better == 1.0


def test_paired_difference_resamples_patients_not_images():
    # Patient p: two images that both favour `other` by 0.2; patient q: one image favouring `ref`
    # by 0.4. A draw of two patients can only give means +0.2 (p, p), 0 (p, q) or -0.4 (q, q).
    ref = {("p1", "coronal"): 0.5, ("p2", "coronal"): 0.5, ("q1", "coronal"): 0.9}
    other = {("p1", "coronal"): 0.7, ("p2", "coronal"): 0.7, ("q1", "coronal"): 0.5}
    grouped = paired_difference(ref, other, {"p1": "p", "p2": "p", "q1": "q"})
    assert grouped.n_patients == 2 and grouped.n_images == 3
    assert grouped.ci_low == pytest.approx(-0.4) and grouped.ci_high == pytest.approx(0.2)
    with pytest.raises(DataError, match="share no scored image"):
        paired_difference(ref, {("x", "coronal"): 1.0})


def test_runner_trains_once_then_builds_tables_from_saved_results(tmp_path, monkeypatch):
    extra = [f"data.cache_dir={tmp_path / 'cache'}", "trainer.progress=false"]
    root = tmp_path / "results"
    models = ["unet", "r2mfnet"]
    first = compare.run_all("smoke", root, models=models, extra=extra)
    assert [r["model"] for r in first] == models
    for model in models:
        saved = json.loads((root / f"{model}_seed0" / "result.json").read_text())
        assert saved["n_test"] > 0 and 0.0 <= saved["summary"]["overall"]["dice"]["mean"] <= 1.0
        assert saved["parameters"] > 0 and saved["gflops"] > 0 and saved["inference_ms"] > 0

    # A second invocation must not train again: finished runs are read back from disk.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("r2mfnet.training.run.train", no_training)
    again = compare.run_all("smoke", root, models=models, extra=extra)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)

    table = compare.results_table(root, models)
    assert table.count("\n") == 3 and "| unet |" in table and "| r2mfnet |" in table
    paired = compare.paired_table(root, models)
    assert "| unet |" in paired and "| r2mfnet |" not in paired
    text = compare.write_results(root, tmp_path / "table.md", "python scripts/compare.py experiment=smoke", models)
    assert (tmp_path / "table.md").read_text() == text and "experiment=smoke" in text
