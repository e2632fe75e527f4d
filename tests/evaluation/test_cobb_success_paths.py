"""Success paths of the Cobb evaluations on tiny synthetic sets, with ground truth as the prediction.

The SpineWeb16 harness (:func:`r2mfnet.evaluation.cobb_spineweb16.evaluate_spineweb16`), the
vertebra-level comparison (:func:`r2mfnet.evaluation.binary_vs_labels.compare_spineweb16`) and the
synthetic harness behind ``scripts/evaluate_cobb.py dataset=synthetic``
(:func:`r2mfnet.evaluation.cobb_synthetic.evaluate_synthetic`) run on SpineWeb16-like images
drawn here (17 rectangles with known corners) or on the synthetic generator's set. Predictors
that hand back the ground truth (or the ground truth with every vertebra named one level off)
stand in for the checkpoints' predictors (a real checkpoint file still decides the split), so every number has a known value: the prediction's rows equal the
ground truth's, the identification rate is 1 (or 0), and each summary number equals the one
recomputed here from the per-image rows.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from r2mfnet.data.labels import rasterize_labels
from r2mfnet.measure.aasce import aasce_angles_from_landmarks
from tests.measure.synth_spine import bump, make_spine

# The AASCE rule on the drawn corners is the reference; the label map painted from the same
# corners measures each vertebra's end plates again from pixels. At 600 px spine height the
# narrowest vertebra (T1) is about 34 px wide: a rasterised edge fitted over its ~20 px core is
# within about half a pixel, atan(0.5 / 20) ~ 1.4 deg at the very worst per plate, the mid-line
# averaging two plates; an angle is the difference of two such tilts: 1.5 degrees for angle 1
# (as in tests/measure/test_aasce_from_masks.py). Angles 2 and 3 pair the ends with T1/L5 or with
# a vertebra beyond them, where the label map's cleaning and fit meet the spine's ends: 2 degrees
# (measured on these three images: at most 1.51, angle 2).
LABEL_TOLERANCE_DEG = (1.5, 2.0, 2.0)


# ----------------------------------------------------------------------------- helpers
def _smape(measured: list[list[float]], reference: list[list[float]]) -> float:
    per_image = []
    for m, r in zip(measured, reference):
        den = sum(a + b for a, b in zip(m, r))
        per_image.append(sum(abs(a - b) for a, b in zip(m, r)) / den if den > 0 else 0.0)
    return 100.0 * sum(per_image) / len(per_image)


def _row_again(per_image: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A statistics row recomputed by hand from the per-image rows that measured ``key``."""
    sel = [r for r in per_image if key in r["measured"]]
    ok = [r for r in sel if r["measured"][key] is not None]
    m = [r["measured"][key] for r in ok]
    ref = [r["reference"] for r in ok]
    err = [a[0] - b[0] for a, b in zip(m, ref)]
    return {
        "n": len(ok), "n_failed": len(sel) - len(ok),
        "mae_main_deg": sum(abs(e) for e in err) / len(err),
        "bias_main_deg": sum(err) / len(err),
        "max_abs_main_deg": max(abs(e) for e in err),
        "mae_angle2_deg": sum(abs(a[1] - b[1]) for a, b in zip(m, ref)) / len(m),
        "mae_angle3_deg": sum(abs(a[2] - b[2]) for a, b in zip(m, ref)) / len(m),
        "smape_pct": _smape(m, ref),
        "smape_main_pct": _smape([a[:1] for a in m], [b[:1] for b in ref]),
    }


def _assert_rows_match_per_image(rows: list[dict[str, Any]], per_image: list[dict[str, Any]]) -> None:
    for row in rows:
        again = _row_again(per_image, row["source"])
        for k, v in again.items():
            assert row[k] == pytest.approx(v, abs=1e-9), (row["source"], k)


def _labels_of(raw: np.ndarray) -> np.ndarray:
    """The drawn images store the label map as ``10 x level`` (see :func:`_write_set`)."""
    return (np.asarray(raw) // 10).astype(np.uint8)


class LabelPredictor:
    """An 18-class "model" that reads the ground-truth labels off the drawn image (``shift=1``:
    every vertebra named one level lower, L5 lost)."""

    def __init__(self, shift: int = 0) -> None:
        self.shift = shift

    def predict_label_maps(self, images: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for raw in images:
            lab = _labels_of(raw).astype(np.int64)
            lab = np.where(lab > 0, lab + self.shift, 0)
            out.append(np.where(lab > 17, 0, lab).astype(np.uint8))
        return out


class MaskPredictor:
    """A binary "model" that returns the ground-truth mask (the union of the drawn labels)."""

    def predict_mask(self, raw: np.ndarray) -> np.ndarray:
        return _labels_of(raw) > 0


def _tiny_checkpoint(path: Path, num_classes: int, data: dict[str, Any]) -> Path:
    """A real (untrained) checkpoint file: its stored data config decides which images are unseen
    (the predictions come from the stand-ins above, passed as ``predictor=``)."""
    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.models import create

    torch.manual_seed(0)
    model = create("unet", base_channels=4, depth=2, num_classes=num_classes)
    save_checkpoint(path, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False},
                           "config": {"data": data}})
    return path


AMPLITUDES = (0.06, 0.1, 0.14)


def _write_set(root: Path, artefact: str | None = None) -> Path:
    """SpineWeb16-like set: one image per amplitude, each its own patient; image = 10 x label map,
    mask = union, landmarks JSON = the drawn corners with ``cobb_angles_deg`` = the AASCE rule on
    them (``artefact``: that case's angle 1 is 20 degrees off, as a reference artefact is)."""
    rows = []
    for sub in ("images", "masks", "landmarks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, amp in enumerate(AMPLITUDES):
        spine = make_spine(bump(amp, 0.5, 0.25), height=600.0)
        labels = rasterize_labels(spine.corners, spine.mask.shape)
        cid = f"case{i}"
        cv2.imwrite(str(root / "images" / f"{cid}.png"), labels.astype(np.uint8) * 10)
        cv2.imwrite(str(root / "masks" / f"{cid}.png"), (labels > 0).astype(np.uint8) * 255)
        ref = [float(a) for a in aasce_angles_from_landmarks(spine.corners, spine.mask.shape[0])]
        if cid == artefact:
            ref[0] += 20.0
        (root / "landmarks" / f"{cid}.json").write_text(json.dumps(
            {"corners": spine.corners.tolist(), "cobb_angles_deg": ref}))
        rows.append({"case_id": cid, "view": "coronal", "image": f"images/{cid}.png",
                     "mask": f"masks/{cid}.png", "landmarks": f"landmarks/{cid}.json", "patient_id": cid})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


# ----------------------------------------------------------------------------- vertebra comparison
def test_vertebra_compare_with_ground_truth_predictions(tmp_path):
    """Synthetic counterpart of the SpineWeb16-only check of the predicted rows and label metrics."""
    from r2mfnet.evaluation.cobb_harness import write_report
    from r2mfnet.evaluation.binary_vs_labels import compare_spineweb16, to_markdown

    manifest = _write_set(tmp_path / "set")
    other = {"source": "synthetic"}  # trained elsewhere: every image is unseen, all three are used
    result = compare_spineweb16(manifest, binary_methods=("vertebrae",), progress=False,
                                checkpoint=_tiny_checkpoint(tmp_path / "labels.pt", 18, other),
                                predictor=LabelPredictor(), binary_predictor=MaskPredictor())
    assert result["n_images"] == 3 and len(result["per_image"]) == 3
    assert [r["case_id"] for r in result["per_image"]] == ["case0", "case1", "case2"]
    assert "all images unseen" in result["predicted_on"]
    seg = result["segmentation"]
    assert seg["n_images"] == 3 and seg["n_vertebrae"] == 3 * 17
    assert seg["identification_rate"] == 1.0 and seg["mean_dice"] == 1.0
    assert set(seg["dice_per_level"].values()) == {1.0}
    rows = {r["source"]: r for r in result["rows"]}
    assert list(rows) == ["gt_mask/vertebrae", "gt_labels/vertebra_level", "pred_mask/vertebrae",
                          "pred_labels/vertebra_level"]
    # the predictions are the ground truth, so their rows are the ground truth's, number for number
    for pred, gt in (("pred_mask/vertebrae", "gt_mask/vertebrae"),
                     ("pred_labels/vertebra_level", "gt_labels/vertebra_level")):
        for r in result["per_image"]:
            assert r["measured"][pred] == r["measured"][gt]
        assert {k: v for k, v in rows[pred].items() if k not in ("source", "what")} == pytest.approx(
            {k: v for k, v in rows[gt].items() if k not in ("source", "what")}, nan_ok=True)
    # labels painted from the reference's own corners give its angles back (hand bound above)
    labels = rows["gt_labels/vertebra_level"]
    assert labels["n"] == 3 and labels["n_failed"] == 0
    for r in result["per_image"]:
        for got, ref, tol in zip(r["measured"]["gt_labels/vertebra_level"], r["reference"], LABEL_TOLERANCE_DEG):
            assert abs(got - ref) <= tol, (r["case_id"], r["measured"]["gt_labels/vertebra_level"], r["reference"])
    assert labels["images_with_missing_levels"] == 0
    _assert_rows_match_per_image(result["rows"], result["per_image"])
    md = to_markdown(result)
    assert "identification rate 1.000 (51 ground-truth vertebrae)" in md
    # written as the command writes it: the JSON holds the same rows, rounded
    j, m = write_report(result, md, tmp_path / "out", "result")
    saved = json.loads(j.read_text(encoding="utf-8"))
    assert saved["n_images"] == 3 and len(saved["per_image"]) == 3
    assert [r["source"] for r in saved["rows"]] == list(rows)
    assert saved["rows"][1]["mae_main_deg"] == pytest.approx(labels["mae_main_deg"], abs=1e-3)
    assert m.read_text(encoding="utf-8") == md


def test_vertebra_compare_names_a_level_shift_and_keeps_to_the_test_split(tmp_path):
    """Every vertebra named one level off: found but not identified (rate 0, Dice 0); a checkpoint
    trained on SpineWeb16 limits every row to its own held-out patients."""
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.splits import split_by_patient
    from r2mfnet.evaluation.binary_vs_labels import compare_spineweb16

    manifest = _write_set(tmp_path / "set")
    split = {"val_fraction": 0.34, "test_fraction": 0.34, "seed": 3}
    ckpt = _tiny_checkpoint(tmp_path / "shifted.pt", 18, {"source": "spineweb16", "split": split})
    held_out = {r.case_id for r in split_by_patient(load_manifest(manifest, check_images=False), **split)["test"]}
    assert 0 < len(held_out) < 3
    result = compare_spineweb16(manifest, binary_methods=("vertebrae",), progress=False, checkpoint=ckpt,
                                predictor=LabelPredictor(shift=1))
    assert {r["case_id"] for r in result["per_image"]} == held_out
    assert all(r["n"] + r["n_failed"] == len(held_out) for r in result["rows"])
    seg = result["segmentation"]
    assert seg["n_vertebrae"] == 17 * len(held_out)
    assert seg["identification_rate"] == 0.0 and seg["mean_dice"] == 0.0
    _assert_rows_match_per_image(result["rows"], result["per_image"])


# ----------------------------------------------------------------------------- SpineWeb16 harness
def test_spineweb16_harness_with_ground_truth_predictions_and_an_artefact(tmp_path):
    from r2mfnet.evaluation.cobb_spineweb16 import evaluate_spineweb16, spineweb16_markdown

    manifest = _write_set(tmp_path / "set", artefact="case1")
    result = evaluate_spineweb16(manifest, predictor=MaskPredictor(), checkpoint=None, split="test",
                                 methods=("vertebrae", "centreline"), progress=False)
    assert result["n_images"] == 3 and [r["case_id"] for r in result["per_image"]] == ["case0", "case1", "case2"]
    rows = {r["source"]: r for r in result["rows"]}
    assert list(rows) == ["landmarks/prepared", "gt/vertebrae", "gt/centreline", "pred/vertebrae", "pred/centreline"]
    # the reference is the rule on the same corners: zero error, except the artefact's 20 degrees
    errors = [r["measured"]["landmarks/prepared"][0] - r["reference"][0] for r in result["per_image"]]
    assert errors == pytest.approx([0.0, -20.0, 0.0], abs=1e-9)
    assert result["reference_artefacts"] == ["case1"]
    consistent = {r["source"]: r for r in result["rows_consistent"]}
    assert consistent["landmarks/prepared"]["n"] == 2 and consistent["landmarks/prepared"]["mae_main_deg"] == 0.0
    assert rows["landmarks/prepared"]["mae_main_deg"] == pytest.approx(20.0 / 3)
    for method in ("vertebrae", "centreline"):
        assert rows[f"pred/{method}"]["n"] == 3 and rows[f"pred/{method}"]["n_failed"] == 0
        for r in result["per_image"]:
            assert r["measured"][f"pred/{method}"] == r["measured"][f"gt/{method}"]
    _assert_rows_match_per_image(result["rows"], result["per_image"])
    _assert_rows_match_per_image(result["rows_consistent"], [r for r in result["per_image"] if r["case_id"] != "case1"])
    md = spineweb16_markdown(result)
    assert "reference artefact: 'case1'" in md and "| landmarks, prepared | 2 | 0 | 0.00 |" in md


# ----------------------------------------------------------------------------- synthetic harness
class _LookupPredictor:
    """Returns each synthetic image's ground-truth mask, found by the image's pixels."""

    def __init__(self, manifest: Path) -> None:
        from r2mfnet.data.io import read_image, read_mask
        from r2mfnet.data.manifest import load_manifest

        self.masks = {hashlib.sha256(read_image(r.image).array.tobytes()).hexdigest(): read_mask(r.mask)
                      for r in load_manifest(manifest, check_images=False)}
        self.calls = 0

    def predict_mask(self, raw: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.masks[hashlib.sha256(np.asarray(raw).tobytes()).hexdigest()]


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory) -> Path:
    from r2mfnet.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("syn") / "d", 2, seed=2, image_height=512,
                            image_width=256, num_workers=0)


def test_synthetic_cobb_evaluation_with_ground_truth_predictions(synthetic_set, tmp_path):
    """What ``scripts/evaluate_cobb.py dataset=synthetic checkpoint=...`` computes and writes."""
    from r2mfnet.evaluation.cobb_harness import write_report
    from r2mfnet.evaluation.cobb_synthetic import evaluate_synthetic, synthetic_markdown

    predictor = _LookupPredictor(synthetic_set)
    result = evaluate_synthetic(synthetic_set, predictor=predictor, methods=("vertebrae", "centreline"),
                                progress=False)
    assert result["n_cases"] == 2 and predictor.calls == 2 * 3  # each view predicted once
    per_view = result["per_view"]
    # one row per case, view and source/method; the predicted rows are the ground truth's
    keys = ["gt/vertebrae", "gt/centreline", "pred/vertebrae", "pred/centreline"]
    cases = sorted({r["case_id"] for r in per_view})
    assert len(cases) == 2
    assert sorted((r["case_id"], r["view"], r["source"]) for r in per_view) == sorted(
        (c, v, k) for c in cases for v in ("coronal", "left_bending", "right_bending") for k in keys)
    by = {(r["case_id"], r["view"], r["source"]): r for r in per_view}
    for (cid, view, key), r in by.items():
        if key.startswith("pred/"):
            assert r["measured"] == by[(cid, view, "gt/" + key.split("/")[1])]["measured"]
    # ground-truth masks against the generator's angle 1: within the hand bounds of
    # tests/measure/test_measure_eval.py (3 degrees centreline, 4 end plates, at 512 px)
    for r in per_view:
        assert r["measured"] is not None, r
        bound = 3.0 if r["source"].endswith("centreline") else 4.0
        assert abs(r["measured"][0] - r["reference"][0]) <= bound, r
    # one statistics row per source, view and method, each recomputed from the per-view rows
    rows = result["rows"]
    assert len(rows) == 4 * 3 and all(r["n"] == 2 and r["n_failed"] == 0 for r in rows)
    for row in rows:
        sel = [{"reference": r["reference"], "measured": {row["source"]: r["measured"]}}
               for r in per_view if r["source"] == row["source"] and r["view"] == row["view"]]
        again = _row_again(sel, row["source"])
        for k, v in again.items():
            assert row[k] == pytest.approx(v, abs=1e-9), (row["source"], row["view"], k)
    gt_rows = [r for r in rows if r["source"].startswith("gt/")]
    pred_rows = [r for r in rows if r["source"].startswith("pred/")]
    for g, p in zip(gt_rows, pred_rows):
        assert p["mae_main_deg"] == g["mae_main_deg"] and p["smape_pct"] == g["smape_pct"]
    flex = {r["source"]: r for r in result["flexibility"]}
    if "gt/vertebrae" in flex:
        assert flex["pred/vertebrae"] == {**flex["gt/vertebrae"], "source": "pred/vertebrae"}
    # the files the command writes
    md = synthetic_markdown(result)
    j, m = write_report(result, md, tmp_path / "out", "measure_eval", command="evaluate_cobb dataset=synthetic")
    assert (j.name, m.name) == ("measure_eval.json", "measure_eval.md")
    saved = json.loads(j.read_text(encoding="utf-8"))
    assert saved["command"] == "evaluate_cobb dataset=synthetic" and len(saved["per_view"]) == len(per_view)
    for a, b in zip(saved["rows"], rows):
        assert a["source"] == b["source"] and a["n"] == b["n"]
        assert a["mae_main_deg"] == pytest.approx(b["mae_main_deg"], abs=1e-3)
        assert a["pearson_main"] is None if math.isnan(b["pearson_main"]) else a["pearson_main"] == pytest.approx(
            b["pearson_main"], abs=1e-3)
    text = m.read_text(encoding="utf-8")
    assert text.startswith("Command: `evaluate_cobb dataset=synthetic`")
    assert "| predicted masks, end plates, coronal | 2 | 0 |" in text
