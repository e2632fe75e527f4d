"""The one Cobb evaluation: sources in, one table out; repairs; the error budget (tiny images)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from r2mfnet.errors import DataError
from r2mfnet.evaluation.cobb_harness import Image, Source, evaluate_sources, rows_markdown, source_rows
from r2mfnet.evaluation.cobb_repairs import remove_extra_parts, restore_missing, split_merged
from r2mfnet.measure.aasce import aasce_angles_from_landmarks
from tests.measure.synth_spine import bump, make_spine, merged_lower_spine


def test_repairs_change_only_their_kind_of_error():
    gt = np.zeros((12, 5), np.uint8)
    gt[1:4, 1:4] = 1  # vertebra 1
    gt[6:9, 1:4] = 2  # vertebra 2, a disc (rows 4-5) between
    merged = gt > 0
    merged[4:6, 1:4] = True  # the model filled the disc
    merged[10:12, 0:2] = True  # and a piece below the spine
    no_extra = remove_extra_parts(merged, gt)
    assert not no_extra[10:].any() and (no_extra[:10] == merged[:10]).all()
    split = split_merged(merged, gt, cut_px=1)
    # cut between the two vertebrae, in the disc only; the vertebrae themselves untouched
    assert (split[gt > 0]).all() and split.sum() < merged.sum()
    from scipy import ndimage

    assert ndimage.label(split[:10], structure=np.ones((3, 3)))[1] == 2
    half = (gt == 1) | ((gt == 2) & (np.arange(12)[:, None] == 6))  # vertebra 2: 1 row of 3
    restored = restore_missing(half, gt)
    assert (restored == (gt > 0)).all()
    assert (restore_missing(gt > 0, gt) == (gt > 0)).all()


def _image(cid: str, reference=(20.0, 10.0, 5.0)) -> Image:
    return Image(cid, Path(f"{cid}.png"), reference, (100, 50))


def test_sources_give_rows_by_hand_and_failures_are_counted():
    def off_by_two(image, memo):
        return [image.reference[0] + 2.0, image.reference[1], image.reference[2] - 1.0]

    def broken(image, memo):
        raise DataError("cannot read", path=image.image)

    sources = [Source("off", "angles", off_by_two, "two degrees off"), Source("broken", "angles", broken),
               Source("absent", "angles", lambda image, memo: None)]
    done = evaluate_sources([_image("a"), _image("b", (40.0, 0.0, 0.0))], sources)
    assert done["keys"] == ["off", "broken"]
    rows = {r["source"]: r for r in source_rows(done["per_image"], done["keys"], sources)}
    assert rows["off"]["mae_main_deg"] == pytest.approx(2.0)
    assert rows["off"]["bias_main_deg"] == pytest.approx(2.0)
    # a: (2 + 0 + 1) / (22 + 20 + 10 + 10 + 4 + 5) = 3/71; b: (2 + 0 + 1) / (42 + 40 + 0 + 0 - 1 + 0) = 3/81
    assert rows["off"]["smape_pct"] == pytest.approx(100 * (3 / 71 + 3 / 81) / 2)
    assert rows["off"]["smape_main_pct"] == pytest.approx(100 * (2 / 42 + 2 / 82) / 2)
    assert rows["broken"]["n"] == 0 and rows["broken"]["n_failed"] == 2
    assert done["per_image"][0]["errors"]["broken"] == "file 'a.png': cannot read"
    table = rows_markdown(list(rows.values()))
    assert "| two degrees off | 2 | 0 |" in table and "| broken | 0 | 2 |" in table


def test_images_measured_on_a_rebuilt_chain_are_counted_in_the_table():
    spine, merged = merged_lower_spine()
    masks = {"clean": spine.mask, "merged": merged}
    sources = [Source("pred", "mask", lambda image, memo: masks[image.case_id])]
    done = evaluate_sources([_image("clean"), _image("merged")], sources)
    assert done["per_image"][0]["info"]["pred/vertebrae"] == {}
    assert done["per_image"][1]["info"]["pred/vertebrae"] == {"chain_rebuilt": True}
    row = source_rows(done["per_image"], done["keys"], sources)[0]
    assert row["n"] == 2 and row["n_failed"] == 0 and row["n_chain_rebuilt"] == 1
    assert "| pred, end plates | 2 | 0 (1 rebuilt) |" in rows_markdown([row])


def _with_sacrum(mask: np.ndarray, tilt: float = 28.0) -> np.ndarray:
    """``mask`` plus a piece tilted ``tilt`` deg below its lowest row (a piece of the sacrum)."""
    out = mask.astype(np.uint8).copy()
    bottom = np.nonzero(mask.any(axis=1))[0].max()
    box = cv2.boxPoints(((mask.shape[1] / 2, float(bottom) + 20.0), (36.0, 18.0), tilt))
    cv2.fillPoly(out, [np.round(box).astype(np.int32)], 1)
    return out.astype(bool)


class SacrumPredictor:
    """Predicts the ground truth (read from the image: the spine is bright) plus a sacrum piece."""

    def predict_mask(self, raw: np.ndarray) -> np.ndarray:
        return _with_sacrum(raw > 100)


@pytest.fixture()
def tiny_spineweb16(tmp_path) -> Path:
    """Two SpineWeb16-like images (a manifest with masks and expert angles = the AASCE rule)."""
    rows = []
    for i, amp in enumerate((0.06, 0.1)):
        spine = make_spine(bump(amp, 0.5, 0.25), height=300.0)
        cid = f"case{i}"
        for sub in ("images", "masks", "landmarks"):
            (tmp_path / sub).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / f"{cid}.png"), spine.mask.astype(np.uint8) * 200)
        cv2.imwrite(str(tmp_path / "masks" / f"{cid}.png"), spine.mask.astype(np.uint8) * 255)
        ref = [float(a) for a in aasce_angles_from_landmarks(spine.corners, spine.mask.shape[0])]
        (tmp_path / "landmarks" / f"{cid}.json").write_text(json.dumps(
            {"corners": spine.corners.tolist(), "cobb_angles_deg": ref}))
        rows.append({"case_id": cid, "view": "coronal", "image": f"images/{cid}.png",
                     "mask": f"masks/{cid}.png", "landmarks": f"landmarks/{cid}.json", "patient_id": cid})
    with (tmp_path / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path / "manifest.csv"


def test_budget_separates_the_sacrum_piece_and_its_shares_add_up(tiny_spineweb16, tmp_path):
    from r2mfnet.evaluation.cobb_budget import budget_markdown, error_budget, write_worst_pictures

    result = error_budget(tiny_spineweb16, SacrumPredictor(), "fake.pt", split="all",
                          input_size=(128, 64), progress=False)
    rows = {r["source"]: r for r in result["rows"]}
    # The extra piece is all the predicted mask gets wrong: removing it gives the ground truth.
    assert rows["pred-extra/vertebrae"]["mae_main_deg"] == pytest.approx(rows["gt/vertebrae"]["mae_main_deg"])
    assert rows["pred_no_rule/vertebrae"]["mae_main_deg"] > rows["gt/vertebrae"]["mae_main_deg"] + 5.0
    # ... and the sanity rule drops it, so the measured prediction is as good as the ground truth.
    assert rows["pred/vertebrae"]["mae_main_deg"] == pytest.approx(rows["gt/vertebrae"]["mae_main_deg"], abs=0.5)
    shares = result["budget"][0]["shares"]
    assert sum(s["smape_main_pct"] for s in shares) == pytest.approx(shares[-1]["cumulative_smape_main_pct"])
    assert shares[-1]["row"] == "pred/vertebrae" and shares[0]["row"] == "gt/vertebrae"
    first = result["per_image"][0]
    gt_area = int((cv2.imread(str(tiny_spineweb16.parent / "masks" / "case0.png"), 0) > 0).sum())
    pred_area = int(SacrumPredictor().predict_mask(cv2.imread(str(tiny_spineweb16.parent / "images" / "case0.png"), 0)).sum())
    assert first["dice"] == pytest.approx(2 * gt_area / (gt_area + pred_area))
    assert first["vertebra_f1"] == pytest.approx(2 * 17 / (17 + 18))
    md = budget_markdown(result)
    assert "extra parts" in md and "Worst images" in md and "Unmeasurable with predicted masks: 0." in md
    pictures = write_worst_pictures(result, SacrumPredictor(), tmp_path / "worst", n=1)
    assert len(pictures) == 1 and cv2.imread(str(pictures[0])).shape[0] > 100


class SettingsPredictor:
    """The ground truth with the recipe's settings; with any other, a sacrum piece as well."""

    def __init__(self, threshold: float = 0.4, tta_flip: bool = True) -> None:
        self.threshold, self.tta_flip = threshold, tta_flip

    def predict_mask(self, raw: np.ndarray) -> np.ndarray:
        recipe = self.threshold == 0.5 and not self.tta_flip
        return raw > 100 if recipe else _with_sacrum(raw > 100)


def test_budget_adds_the_recipe_settings_row_when_the_run_changes_them(tiny_spineweb16):
    from r2mfnet.evaluation.cobb_budget import error_budget, recipe_predictor

    predictor = SettingsPredictor()
    result = error_budget(tiny_spineweb16, predictor, "fake.pt", split="all", input_size=(128, 64),
                          progress=False)
    rows = {r["source"]: r for r in result["rows"]}
    # the "before" row was predicted with threshold 0.5 and no TTA: the ground truth itself
    assert rows["pred_recipe/vertebrae"]["mae_main_deg"] == pytest.approx(rows["gt/vertebrae"]["mae_main_deg"])
    assert rows["pred_no_rule/vertebrae"]["mae_main_deg"] > rows["gt/vertebrae"]["mae_main_deg"] + 5.0
    assert (predictor.threshold, predictor.tta_flip) == (0.4, True)  # the run's predictor untouched
    assert result["prediction_settings"] == {"threshold": 0.4, "tta_flip": True}
    assert recipe_predictor(SettingsPredictor(0.5, False)) is None
    assert "pred_recipe/vertebrae" not in {
        r["source"] for r in error_budget(tiny_spineweb16, SacrumPredictor(), "fake.pt", split="all",
                                          input_size=(128, 64), progress=False)["rows"]}


class LevelCorners:
    """A stand-in corner refiner that reads every vertebra as level (tilt 0): every angle it
    touches is 0 deg, so its rows' main-angle error is the experts' main angle itself."""

    name = "level.pt"

    def __init__(self) -> None:
        self.checked: list[tuple[list[str], str]] = []

    def check_unseen(self, case_ids, split: str) -> None:
        self.checked.append((list(case_ids), split))

    def for_image(self, image: np.ndarray):
        from dataclasses import replace

        assert image.ndim == 2  # the radiograph itself, read per image
        return lambda vertebrae: [replace(v, tilt_deg=0.0) for v in vertebrae]


def test_budget_with_a_corner_network_reads_every_mask_row_with_it(tiny_spineweb16, tmp_path):
    from r2mfnet.evaluation.cobb_budget import budget_markdown, error_budget, write_worst_pictures

    plain = error_budget(tiny_spineweb16, SacrumPredictor(), "fake.pt", split="all",
                         input_size=(128, 64), progress=False)
    corners = LevelCorners()
    result = error_budget(tiny_spineweb16, SacrumPredictor(), "fake.pt", split="all",
                          input_size=(128, 64), progress=False, corners=corners)
    assert corners.checked == [([f"case{i}" for i in range(len(result["per_image"]))], "all")]
    rows = {r["source"]: r for r in result["rows"]}
    before = {r["source"]: r for r in plain["rows"]}
    experts = np.mean([r["reference"][0] for r in result["per_image"]])
    for name in ("gt", "gt@128x64", "pred", "pred_repaired", "pred-extra"):
        assert rows[f"{name}/vertebrae"]["mae_main_deg"] == pytest.approx(experts)
    # the masks' own tilts, as without the corner network
    assert rows["pred_masks/vertebrae"]["mae_main_deg"] == pytest.approx(before["pred/vertebrae"]["mae_main_deg"])
    assert result["corners"] == "level.pt" and "corner network level.pt" in budget_markdown(result)
    shares = result["budget"][0]["shares"]
    assert shares[0]["smape_main_pct"] == pytest.approx(100.0)  # AASCE SMAPE: |0 - a| / (0 + a), every image
    assert sum(s["mae_main_deg"] for s in shares[1:]) == pytest.approx(0.0, abs=1e-9)
    pictures = write_worst_pictures(result, SacrumPredictor(), tmp_path / "worst", n=1, corners=corners)
    assert len(pictures) == 1
