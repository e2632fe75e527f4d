"""The corner network through the commands: r2mfnet-train-corners trains on a segmentation
checkpoint's own training patients only; evaluate_cobb's ``corners=`` adds the refined row; predict's
``corners=`` measures every view (and its TTA halves) with the refined tilts.

SpineWeb16 itself is not needed: a drawn three-patient set stands in for it
(:func:`tests.evaluation.test_cobb_success_paths._write_set`), and tiny untrained checkpoints carry
the data split that decides which images each network may see.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from r2mfnet.apps import evaluate_cobb, predict, train_corners
from r2mfnet.config_dir import compose
from r2mfnet.errors import ConfigError
from tests.apps.test_evaluate_cobb_ensemble import SPLIT, _checkpoint, _held_out
from tests.evaluation.test_cobb_success_paths import _write_set


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("sw16c") / "set")


@pytest.fixture(scope="module")
def corner_file(manifest, tmp_path_factory) -> tuple[Path, Path]:
    """A one-epoch corner network trained with ``split_from=`` a segmentation checkpoint."""
    tmp = tmp_path_factory.mktemp("corners")
    seg = _checkpoint(tmp / "seg.pt", {"source": "spineweb16", "split": SPLIT})
    out = train_corners.run(compose("train_corners", [
        "dataset=manifest", f"manifest={manifest}", f"split_from={seg}", "epochs=1", "batch_size=8",
        "crop_size=32", "threads=1", f"output_file={tmp / 'corners.pt'}"]))
    return out, seg


def test_train_corners_uses_only_the_segmentation_checkpoints_training_patients(manifest, corner_file):
    out, seg = corner_file
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record["train_cases"]) == _held_out(manifest, SPLIT, "train")
    assert set(record["val_cases"]) == _held_out(manifest, SPLIT, "val")
    assert not set(record["train_cases"] + record["val_cases"]) & _held_out(manifest, SPLIT, "test")
    assert record["best_epoch"] == 1 and len(record["history"]) == 1
    assert str(seg) in record["split"]
    from r2mfnet.inference.corner_refiner import CornerRefiner, load_corner_net

    assert load_corner_net(out).size == 32
    refiner = CornerRefiner.from_file(out)  # the checkpoint itself carries the ids the evaluation checks
    assert refiner.trained_on == set(record["train_cases"]) and refiner.chosen_on == set(record["val_cases"])


def test_train_corners_refuses_a_manifest_without_landmarks(tmp_path):
    import cv2
    import numpy as np

    from r2mfnet.errors import DataError

    for name in ("x.png", "m.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    (tmp_path / "m.csv").write_text("case_id,view,image,mask\ncase0,coronal,x.png,m.png\n")
    with pytest.raises(DataError, match="no record has a landmarks JSON"):
        train_corners.run(compose("train_corners", ["dataset=manifest", f"manifest={tmp_path / 'm.csv'}",
                                                   f"output_file={tmp_path / 'c.pt'}"]))
    assert not (tmp_path / "c.pt").exists()


def _evaluate(monkeypatch, manifest: Path, tmp_path: Path, overrides: list[str]) -> dict:
    import r2mfnet.data.spineweb16 as spineweb16

    monkeypatch.setattr(spineweb16, "prepare_spineweb16", lambda root, cache: manifest)
    return evaluate_cobb.run(compose("evaluate_cobb", [
        "dataset=spineweb16", f"root={tmp_path}", f"cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'out'}",
        "device=cpu", "progress=false", "methods=[vertebrae]", *overrides]))


def test_evaluate_cobb_adds_the_corner_row_on_the_same_images(monkeypatch, manifest, corner_file, tmp_path):
    out, seg = corner_file
    result = _evaluate(monkeypatch, manifest, tmp_path, [f"checkpoint={seg}", f"corners={out}", "split=test"])
    rows = {r["source"]: r for r in result["rows"]}
    assert "pred_corners/vertebrae" in rows and "pred/vertebrae" in rows
    assert {r["case_id"] for r in result["per_image"]} == _held_out(manifest, SPLIT, "test")
    assert result["corners"] == str(out)
    assert json.loads((tmp_path / "out" / "measure_eval.json").read_text())["corners"] == str(out)
    assert f"tilts read by the corner network {out}" in (tmp_path / "out" / "measure_eval.md").read_text()


def test_evaluate_cobb_refuses_a_corner_network_that_saw_the_evaluated_images(monkeypatch, manifest, corner_file,
                                                                             tmp_path):
    """Trained with split_from= the evaluated checkpoint: its test images are unseen (above). A
    network trained on the manifest's whole set, or one that records no images, is refused."""
    from r2mfnet.inference.corner_refiner import load_corner_net, save_corner_net

    out, seg = corner_file
    net = load_corner_net(out)
    everything = {"train_cases": ["case0", "case1", "case2"], "val_cases": []}
    for extra, words in (({"train": everything}, "was trained or chosen on 1 of the evaluated test images"),
                         ({}, "does not record the images it was trained and chosen on")):
        bad = save_corner_net(net, tmp_path / "bad.pt", extra)
        with pytest.raises(ConfigError, match=f"^corner network '.*bad.pt' {words}"):
            _evaluate(monkeypatch, manifest, tmp_path, [f"checkpoint={seg}", f"corners={bad}", "split=test"])
    assert not (tmp_path / "out").exists()


def test_evaluate_cobb_refuses_corners_without_a_checkpoint(monkeypatch, manifest, corner_file, tmp_path):
    out, _ = corner_file
    with pytest.raises(ConfigError, match="^corners= needs dataset=spineweb16 and checkpoint=PATH"):
        _evaluate(monkeypatch, manifest, tmp_path, [f"corners={out}"])
    assert not (tmp_path / "out").exists()


def test_the_budget_with_corners_reads_every_mask_row_with_the_network(monkeypatch, manifest, corner_file, tmp_path):
    """budget=true corners=...: the budget of the corner-network chain, and the masks' own tilts
    beside it (pred_masks), on the checkpoint's unseen images; the file names the network."""
    out, seg = corner_file
    result = _evaluate(monkeypatch, manifest, tmp_path, [f"checkpoint={seg}", f"corners={out}", "split=test",
                                                         "budget=true", "worst=1"])
    rows = {r["source"]: r for r in result["rows"]}
    assert {"pred_masks/vertebrae", "pred/vertebrae", "gt/vertebrae", "pred_repaired/vertebrae"} <= set(rows)
    assert "tilts from the corner network" in rows["pred/vertebrae"]["what"]
    assert "tilts from the corner network" not in rows["pred_masks/vertebrae"]["what"]
    assert {r["case_id"] for r in result["per_image"]} == _held_out(manifest, SPLIT, "test")
    written = json.loads((tmp_path / "out" / "cobb_budget.json").read_text())
    assert written["corners"] == str(out) and len(written["worst_pictures"]) == 1


def test_predict_measures_views_with_the_refined_tilts(monkeypatch, manifest, corner_file, tmp_path):
    """A refiner that reads every vertebra level makes every main angle 0 (the drawn spines are
    curved): the tilts measured are the refiner's; measurements.json names the network."""
    from r2mfnet.inference.corner_refiner import CornerRefiner

    out, seg = corner_file
    monkeypatch.setattr(CornerRefiner, "refine",
                        lambda self, image, vts: [replace(v, tilt_deg=0.0) for v in vts])
    code = predict.run(compose("predict", [
        f"input={manifest}", f"output_dir={tmp_path / 'pred'}", f"checkpoint={seg}", f"corners={out}",
        "masks=manifest", "progress=false", "tta_flip=true"]))
    assert code == 0
    cases = sorted((tmp_path / "pred").glob("*/measurements.json"))
    assert len(cases) == 3
    for path in cases:
        m = json.loads(path.read_text())
        assert m["corners"] == str(out)
        view = m["views"]["coronal"]
        assert view["measured"] and view["main_angle_deg"] == 0.0 and view["tilt_range_deg"] == 0.0
    page = (tmp_path / "pred" / "index.html").read_text()
    assert (f'<p class="how">Masks: manifest masks, not predicted. Tilts: each vertebra&#x27;s end plates, '
            f"each vertebra&#x27;s tilt read from the radiograph by the corner network {out}.</p>") in page


def test_the_tta_halves_are_measured_with_the_views_refiner():
    """The review page's flip-TTA flag compares the halves' main angles: with a refiner they are
    read the same way as the view (here: a levelling refiner, main angles 0 where the masks' own
    tilts give a curve)."""
    from r2mfnet.apps.predict_output import _add_tta_halves
    from tests.measure.synth_spine import bump, make_spine

    mask = make_spine(bump(0.12, 0.5, 0.25)).mask
    level = lambda vts: [replace(v, tilt_deg=0.0) for v in vts]  # noqa: E731
    plain, refined = {"coronal": {"measured": True}}, {"coronal": {"measured": True}}
    _add_tta_halves(plain, {"coronal": (mask, mask)}, "vertebrae", {})
    _add_tta_halves(refined, {"coronal": (mask, mask)}, "vertebrae", {}, {"coronal": level})
    assert plain["coronal"]["tta_halves"]["plain_main_deg"] > 10.0
    assert refined["coronal"]["tta_halves"]["plain_main_deg"] == 0.0
    assert refined["coronal"]["tta_halves"]["mirrored_main_deg"] == 0.0


def test_predict_refuses_corners_with_the_centreline_method(corner_file, tmp_path):
    out, _ = corner_file
    with pytest.raises(ConfigError, match="^corners= reads each vertebra's tilt for the end-plate method"):
        predict.run(compose("predict", [f"input={tmp_path}", f"output_dir={tmp_path / 'p'}", f"corners={out}",
                                        "method=centreline", "masks=manifest"]))


def test_train_corners_refuses_a_split_it_cannot_recompute_and_a_json_output(monkeypatch, manifest, tmp_path):
    """split_from= a checkpoint trained on other data (its split says nothing of SpineWeb16) or
    without a data config; an output_file the training record would overwrite."""
    import r2mfnet.data.spineweb16 as spineweb16

    monkeypatch.setattr(spineweb16, "prepare_spineweb16", lambda root, cache: manifest)
    other = _checkpoint(tmp_path / "other.pt", {"source": "synthetic"})
    bare = _checkpoint(tmp_path / "bare.pt", {})
    for ck, words in ((other, "was trained on 'synthetic', not SpineWeb16"), (bare, "stores no data config")):
        with pytest.raises(ConfigError, match=f"^split_from checkpoint '.*{ck.name}' {words}"):
            train_corners.run(compose("train_corners", [f"split_from={ck}", f"root={tmp_path}",
                                                       f"cache_dir={tmp_path / 'cache'}",
                                                       f"output_file={tmp_path / 'c.pt'}"]))
    with pytest.raises(ConfigError, match="^output_file must not end in .json"):
        train_corners.run(compose("train_corners", ["dataset=manifest", f"manifest={manifest}",
                                                   f"output_file={tmp_path / 'c.json'}"]))
    assert not list(tmp_path.glob("c.*"))
