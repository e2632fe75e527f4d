"""``merged_split=`` of the two commands that measure angles (predict, evaluate_cobb).

The key is typed by both schemas (default ``centreline``: every output as before), a bad value
is one line naming the key before any model is built, and the value reaches the end-plate
measurement: of ``measurements.json`` and its TTA halves (predict), of every mask row of the Cobb
harness, of the synthetic set and of the error budget, whose report states it (evaluate_cobb).
The mask is the straight column of tilted rectangles with two of them merged into one blob
without a neck (``tests/measure/test_measure_merged_split.py``), where the two settings differ.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from r2mfnet.errors import ConfigError
from tests.apps.test_command_configs import COMMANDS, error_lines, run_main
from tests.measure.test_measure_merged_split import merged_column

MEASURING = ("predict", "evaluate_cobb")
SCHEMAS = {"predict": "PredictConfig", "evaluate_cobb": "EvaluateCobbConfig"}


@pytest.fixture(scope="module")
def merged_mask() -> np.ndarray:
    """The column with vertebrae 5 and 6 (drawn at 14 and 12 deg) merged without a neck."""
    return merged_column((5, 6))[0]


def _main_angle(mask: np.ndarray, merged_split: str) -> float:
    from r2mfnet.measure.vertebrae import cobb_from_mask_vertebrae

    return float(cobb_from_mask_vertebrae(mask, merged_split=merged_split)[1].main_angle)


def test_the_settings_differ_on_the_merged_column(merged_mask):
    """The premise of the tests below: 27.5 deg with the cut, 21.4 with the centreline's tilt."""
    assert _main_angle(merged_mask, "expected") > _main_angle(merged_mask, "centreline") + 4.0


# ----------------------------------------------------------------------------- schema
@pytest.mark.parametrize("command", MEASURING)
def test_merged_split_is_a_typed_key_defaulting_to_centreline(command):
    import importlib

    from r2mfnet.apps.schema import command_config
    from r2mfnet.config_dir import compose

    needed, _ = COMMANDS[command]
    schema = getattr(importlib.import_module(f"r2mfnet.apps.{command}"), SCHEMAS[command])
    assert command_config(schema, compose(command, needed)).merged_split == "centreline"
    assert command_config(schema, compose(command, [*needed, "merged_split=expected"])).merged_split == "expected"


@pytest.mark.parametrize("command", MEASURING)
@pytest.mark.parametrize("bad", ["Expected", "levels"])
def test_a_bad_merged_split_is_one_line_naming_the_key_before_any_model(command, bad, monkeypatch,
                                                                         capsys, tmp_path):
    """The checkpoint does not exist: the error is the key's, so no model was being built."""
    needed, _ = COMMANDS[command]
    code, _, err = run_main(command, [*needed, "checkpoint=missing.pt", f"merged_split={bad}"],
                            monkeypatch, capsys, tmp_path)
    assert code == 2, err
    assert error_lines(err) == [f"r2mfnet: error: merged_split must be one of centreline, expected, got '{bad}'"]
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- predict
@pytest.fixture()
def merged_manifest(tmp_path, merged_mask) -> Path:
    """A one-row manifest whose own mask is the merged column (``masks=manifest``: no model)."""
    cv2.imwrite(str(tmp_path / "a.png"), merged_mask.astype(np.uint8) * 200)
    cv2.imwrite(str(tmp_path / "a_mask.png"), merged_mask.astype(np.uint8) * 255)
    with (tmp_path / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["case_id", "view", "image", "mask"])
        writer.writeheader()
        writer.writerow({"case_id": "a", "view": "coronal", "image": "a.png", "mask": "a_mask.png"})
    return tmp_path / "manifest.csv"


@pytest.mark.parametrize("merged_split", ["centreline", "expected"])
def test_predict_measures_and_records_the_setting(merged_split, merged_manifest, merged_mask, tmp_path):
    from r2mfnet.apps import predict as predict_app
    from r2mfnet.config_dir import compose

    out = tmp_path / "out"
    overrides = [f"input={merged_manifest}", f"output_dir={out}", "masks=manifest", "progress=false"]
    if merged_split != "centreline":  # the default is the YAML's
        overrides.append(f"merged_split={merged_split}")
    assert predict_app.run(compose("predict", overrides)) == 0
    doc = json.loads((out / "a" / "measurements.json").read_text())
    assert doc["tilt_method"] == "vertebrae" and doc["merged_split"] == merged_split
    assert json.loads((out / "summary.json").read_text())["merged_split"] == merged_split
    assert doc["views"]["coronal"]["main_angle_deg"] == pytest.approx(_main_angle(merged_mask, merged_split),
                                                                      abs=0.01)


def test_predict_measures_the_tta_halves_with_the_setting(tmp_path, merged_mask):
    from r2mfnet.apps.predict_output import run_predictions
    from r2mfnet.data.inputs import InputCase, InputView

    cv2.imwrite(str(tmp_path / "a.png"), merged_mask.astype(np.uint8) * 200)

    def get_mask(iv, raw):
        return raw > 100

    get_mask.with_halves = lambda iv, raw: (raw > 100, (raw > 100, raw > 100))  # type: ignore[attr-defined]
    case = InputCase("a", {"coronal": InputView("coronal", tmp_path / "a.png", "manifest")})
    run_predictions([case], tmp_path / "out", get_mask, progress=False, merged_split="expected")
    halves = json.loads((tmp_path / "out" / "a" / "measurements.json").read_text())["views"]["coronal"]["tta_halves"]
    assert halves["plain_main_deg"] == pytest.approx(_main_angle(merged_mask, "expected"), abs=0.01)
    with pytest.raises(ConfigError, match="merged_split"):  # before the first case is written
        run_predictions([case], tmp_path / "bad", get_mask, progress=False, merged_split="cut")
    assert not (tmp_path / "bad" / "a").exists()


# ----------------------------------------------------------------------------- evaluate_cobb
def test_the_harness_measures_every_mask_row_with_the_setting(merged_mask):
    from r2mfnet.evaluation.cobb_harness import Image, Source, evaluate_sources
    from r2mfnet.measure.angle_stats import measure_triple

    image = Image("a", Path("a.png"), (27.0, 10.0, 10.0), merged_mask.shape)
    sources = [Source("gt", "mask", lambda image, memo: merged_mask),
               Source("no_rule", "mask", lambda image, memo: merged_mask, "", {"vertebrae": {"anatomy": False}})]
    methods = ("vertebrae", "centreline")
    done = {s: evaluate_sources([image], sources, methods, merged_split=s)["per_image"][0]["measured"]
            for s in ("centreline", "expected")}
    for key in ("gt/vertebrae", "no_rule/vertebrae"):
        kwargs = {"anatomy": False} if key.startswith("no_rule") else {}
        assert done["expected"][key] == measure_triple(merged_mask, "vertebrae", merged_split="expected", **kwargs)[0]
        assert done["centreline"][key] == measure_triple(merged_mask, "vertebrae", **kwargs)[0]
        assert done["expected"][key][0] > done["centreline"][key][0] + 1.0  # 27.5 against 25.7 deg
    assert done["expected"]["gt/centreline"] == done["centreline"]["gt/centreline"]  # no vertebrae to cut

    def never(image, memo):
        raise AssertionError("a bad setting must stop the run before the first image")

    with pytest.raises(ConfigError, match="merged_split"):
        evaluate_sources([image], [Source("x", "mask", never)], methods, merged_split="cut")


def test_the_synthetic_harness_hands_the_setting_to_the_end_plates(tmp_path, monkeypatch):
    import r2mfnet.measure.case as case_module
    from r2mfnet.data.synthetic import generate_dataset
    from r2mfnet.evaluation.cobb_synthetic import evaluate_synthetic, synthetic_markdown

    manifest = generate_dataset(tmp_path / "syn", 1, seed=5, image_height=256, image_width=128,
                                num_workers=0)
    seen = []
    real = case_module.measure_case

    def spy(masks, case_id="", method="centreline", **kwargs):
        seen.append((method, kwargs))
        return real(masks, case_id=case_id, method=method, **kwargs)

    monkeypatch.setattr(case_module, "measure_case", spy)
    result = evaluate_synthetic(manifest, methods=("vertebrae", "centreline"), progress=False,
                                merged_split="expected")
    assert seen == [("vertebrae", {"merged_split": "expected"}), ("centreline", {})]
    assert result["merged_split"] == "expected"
    assert "end plates: merged_split=expected" in synthetic_markdown(result)


def test_evaluate_cobb_hands_the_key_to_the_harness(tmp_path, monkeypatch):
    """The command's pass-through, the harness stubbed (no data set, no model)."""
    import r2mfnet.data.synthetic as synthetic
    import r2mfnet.evaluation.cobb_synthetic as cobb_synthetic
    from r2mfnet.apps import evaluate_cobb
    from r2mfnet.config_dir import compose

    calls = []

    def fake(manifest, predictor=None, methods=(), progress=True, merged_split="centreline"):
        calls.append(merged_split)
        return {"dataset": "synthetic", "n_cases": 0, "rows": [], "flexibility": [],
                "merged_split": merged_split}

    monkeypatch.setattr(synthetic, "ensure_dataset", lambda *a, **k: tmp_path / "manifest.csv")
    monkeypatch.setattr(cobb_synthetic, "evaluate_synthetic", fake)
    evaluate_cobb.run(compose("evaluate_cobb", ["dataset=synthetic", "merged_split=expected",
                                                f"output_dir={tmp_path / 'out'}", "progress=false"]))
    assert calls == ["expected"]
    assert "end plates: merged_split=expected" in (tmp_path / "out" / "measure_eval.md").read_text()
    assert json.loads((tmp_path / "out" / "measure_eval.json").read_text())["merged_split"] == "expected"


def test_the_budget_states_the_setting(tmp_path):
    """A one-image SpineWeb16-like set whose mask is the merged column, predicted as itself."""
    from r2mfnet.evaluation.cobb_budget import budget_markdown, error_budget
    from r2mfnet.measure.aasce import aasce_angles_from_landmarks
    from r2mfnet.measure.angle_stats import measure_triple

    mask, corners = merged_column((5, 6))
    for sub in ("images", "masks", "landmarks"):
        (tmp_path / sub).mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), mask.astype(np.uint8) * 200)
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), mask.astype(np.uint8) * 255)
    ref = [float(x) for x in aasce_angles_from_landmarks(corners, mask.shape[0])]
    (tmp_path / "landmarks" / "a.json").write_text(json.dumps({"corners": corners.tolist(), "cobb_angles_deg": ref}))
    with (tmp_path / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["case_id", "view", "image", "mask", "landmarks", "patient_id"])
        writer.writeheader()
        writer.writerow({"case_id": "a", "view": "coronal", "image": "images/a.png", "mask": "masks/a.png",
                         "landmarks": "landmarks/a.json", "patient_id": "a"})

    class Itself:
        threshold, tta_flip = 0.5, False

        def predict_mask(self, raw):
            return raw > 100

    result = error_budget(tmp_path / "manifest.csv", Itself(), "fake.pt", split="all",
                          input_size=(550, 200), progress=False, merged_split="expected")
    assert result["merged_split"] == "expected"
    assert result["per_image"][0]["measured"]["pred/vertebrae"] == measure_triple(mask, "vertebrae",
                                                                                merged_split="expected")[0]
    assert "end plates: merged_split=expected" in budget_markdown(result).splitlines()[0]
