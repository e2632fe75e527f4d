"""The comparison runner: resumable runs, tables only from saved results, paired differences."""
from __future__ import annotations

import csv
import json

import pytest

from r2mfnet.errors import DataError
from r2mfnet.experiments import comparison
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
    per_model = {"unet": ["trainer.epochs=3"]}  # the U-Net's share of the budget: 3 epochs, R2MF-Net 2
    first = comparison.run_all("smoke", root, models=models, extra=extra, per_model=per_model)
    assert [r["model"] for r in first] == models
    for model in models:
        saved = json.loads((root / f"{model}_seed0" / "result.json").read_text())
        # the stored summary is the mean of the run's own per-image table (a result from another
        # run, a dropped row or a wrong aggregation would differ)
        with open(root / f"{model}_seed0" / "eval" / "metrics_per_case.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert saved["n_test"] == len(rows) > 0
        for metric in ("dice", "vertebra_f1"):
            values = [float(r[metric]) for r in rows]
            assert saved["summary"]["overall"][metric]["mean"] == pytest.approx(sum(values) / len(values), abs=1e-6)
        assert saved["parameters"] > 0 and saved["gflops"] > 0 and saved["inference_ms"] > 0
        curve = saved["curve"]  # one point per validated epoch
        assert len(curve) == saved["epochs"] == (3 if model == "unet" else 2)
        assert all(0.0 <= p["val_dice"] <= 1.0 and p["cpu_seconds"] > 0 for p in curve)
        assert [p["cpu_seconds"] for p in curve] == sorted(p["cpu_seconds"] for p in curve)

    # A second invocation must not train again: finished runs are read back from disk.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("r2mfnet.training.run.train", no_training)
    again = comparison.run_all("smoke", root, models=models, extra=extra, per_model=per_model)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)

    table = comparison.results_table(root, models)
    assert table.count("\n") == 3 and "| unet |" in table and "| r2mfnet |" in table
    unit = json.loads((root / "unet_seed0" / "result.json").read_text())["summary"]["distance_unit"]
    assert f"HD95 ({'mm' if unit == 'mm' else 'px'})" in table and "vertebra F1" in table
    unet = json.loads((root / "unet_seed0" / "result.json").read_text())
    row = next(line for line in table.splitlines() if line.startswith("| unet |")).split(" | ")
    assert float(row[9]) == pytest.approx(round(unet["curve"][-1]["cpu_seconds"] / 60, 1))  # CPU minutes
    paired = comparison.paired_table(root, models)
    assert "| unet |" in paired and "| r2mfnet |" not in paired
    text = comparison.write_results(root, tmp_path / "table.md", "python scripts/compare.py experiment=smoke", models,
                                 curve_models=models)
    assert (tmp_path / "table.md").read_text() == text and "experiment=smoke" in text
    assert "Paired per-image vertebra F1 differences" in text
    svg = (tmp_path / "table_curves.svg").read_text()
    assert svg.count("<polyline") == 2 and "unet seed 0" in svg
    # another reference (a renamed default keeps its quoted paired numbers reproducible): the
    # same per-image differences with the sign turned
    against_unet = comparison.write_results(root, tmp_path / "t2.md", "cmd", models, curve_models=models,
                                            reference="unet")
    assert "lower than unet" in against_unet and "| r2mfnet |" in against_unet.split("Paired")[1]
    mean = lambda table, model: float(next(line for line in table.splitlines()
                                           if line.startswith(f"| {model} |")).split(" | ")[1])
    assert mean(paired, "unet") == pytest.approx(-mean(comparison.paired_table(root, models, reference="unet"),
                                                       "r2mfnet"), abs=1e-4)


def test_cobb_table_averages_the_end_plate_rows_over_seeds(tmp_path):
    def result(seed, smape, mae, failed):
        return {"model": "r2mfnet", "seed": seed, "summary": {"overall": {}},
                "cobb_predicted": [{"source": "pred/vertebrae", "n": 90, "n_failed": failed,
                                    "smape_pct": smape, "mae_main_deg": mae},
                                   {"source": "pred/centreline", "n": 90, "n_failed": 0,
                                    "smape_pct": 99.0, "mae_main_deg": 99.0}]}
    for seed, args in enumerate([(20.0, 7.0, 3), (30.0, 9.0, 5)]):
        (tmp_path / f"r2mfnet_seed{seed}").mkdir()
        (tmp_path / f"r2mfnet_seed{seed}" / "result.json").write_text(json.dumps(result(seed, *args)))
    table = comparison.cobb_table(tmp_path, ["r2mfnet", "unet"])
    # smape_pct is the three angles' SMAPE, and the header says so (it once said "main-angle")
    assert table.splitlines()[0].startswith("| model | SMAPE, 3 angles (%) | main-angle MAE (°) |")
    assert table.splitlines()[2] == "| r2mfnet | 25.0 | 8.00 | 90, 90 | 3, 5 | 2 |"  # centreline rows ignored
    assert "unet" not in table  # no runs: no row


def test_curves_svg_draws_one_line_per_run_and_refuses_an_empty_picture():
    from r2mfnet.experiments.curves import curves_svg

    runs = {"r2mfnet seed 0": [{"cpu_seconds": 60, "val_dice": 0.5}, {"cpu_seconds": 120, "val_dice": 0.7}],
            "r2mfnet seed 1": [{"cpu_seconds": 60, "val_dice": 0.6}],
            "unet seed 0": [{"cpu_seconds": 30, "val_dice": 0.4}, {"epoch": 2}]}
    svg = curves_svg(runs, title="t")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    lines = [line for line in svg.splitlines() if line.startswith("<polyline")]
    assert len(lines) == 3
    assert lines[0].count(",") == 2 and lines[2].count(",") == 1  # the point without a score is skipped
    assert 'stroke-dasharray' in lines[1] and 'stroke-dasharray' not in lines[0]  # seed 1: dashed, same colour
    assert lines[0].split('stroke="')[1][:7] == lines[1].split('stroke="')[1][:7] != lines[2].split('stroke="')[1][:7]
    with pytest.raises(ValueError, match="no run"):
        curves_svg({"unet seed 0": [{"epoch": 1}]})


def test_per_model_overrides_must_be_lists():
    from r2mfnet.apps.compare import CompareConfig
    from r2mfnet.apps.schema import command_config
    from r2mfnet.config_dir import compose
    from r2mfnet.errors import ConfigError

    ok = command_config(CompareConfig, compose("compare", ["per_model={unet:['trainer.epochs=60']}"]))
    assert ok.per_model["unet"] == ["trainer.epochs=60"]  # given; the YAML's other models stay
    assert ok.per_model["r2mfnet"] == ["trainer.epochs=44"]
    with pytest.raises(ConfigError, match="at key 'per_model.unet'"):
        command_config(CompareConfig, compose("compare", ["per_model={unet:'trainer.epochs=60'}"]))