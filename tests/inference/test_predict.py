"""scripts/predict.py end to end: manifest, folder with a corrupt file, measurements.json schema.

In-process runs compose ``configs/predict.yaml`` exactly as the command does and call the
application (:func:`r2mfnet.apps.predict.run`); the script's own path runs as a subprocess.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hydra.errors import ConfigCompositionException

from r2mfnet.apps import predict as predict_app
from r2mfnet.apps.predict_output import SCHEMA, safe_folder_names
from r2mfnet.config_dir import compose
from r2mfnet.data.inputs import collect_inputs, view_from_filename
from r2mfnet.errors import ConfigError, DataError
from r2mfnet.data.manifest import load_manifest
from r2mfnet.data.views import LEVELS
from tests.helpers import run_script

VIEW_KEYS_MEASURED = {"view", "measured", "source", "main_angle_deg", "tilt_range_deg",
                      "pt_angle_deg", "mt_angle_deg", "tl_angle_deg", "curves", "centreline"}
CURVE_KEYS = {"upper_level", "lower_level", "apex_level", "angle_deg", "side", "region"}


def predict_from_cli(overrides: list[str]) -> int:
    """What ``scripts/predict.py <overrides>`` runs, in-process: its exit code."""
    return predict_app.run(compose("predict", overrides))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny untrained U-Net checkpoint (64 x 32 input): enough to exercise the whole path."""
    import torch

    from r2mfnet.models import create
    from r2mfnet.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create("unet", base_channels=4, depth=2)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False}})
    return path


@pytest.fixture(scope="module")
def synthetic_manifest(tmp_path_factory) -> Path:
    """Two generated three-view cases (256 x 128) with masks and landmarks."""
    from r2mfnet.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("syn") / "data", 2, seed=3,
                            image_height=256, image_width=128, num_workers=0)


def check_measurements(doc: dict, views: set[str]) -> None:
    """The measurements.json schema (docs/clinical.md)."""
    assert doc["schema"] == SCHEMA
    for key in ("case_id", "tilt_method", "inputs", "files", "views", "flexibility", "notes",
                "masks", "input_kind"):
        assert key in doc, key
    assert set(doc["views"]) == views and set(doc["inputs"]) == views
    for view, d in doc["views"].items():
        assert d["view"] == view
        assert isinstance(d["measured"], bool)
        if d["measured"]:
            assert VIEW_KEYS_MEASURED <= set(d)
            assert d["main_angle_deg"] >= 0 and d["tilt_range_deg"] >= d["main_angle_deg"] - 1e-6
            for c in d["curves"]:
                assert CURVE_KEYS <= set(c) and c["region"] in ("PT", "MT", "TL")
        else:
            assert d["error"] and d["error_kind"] in ("unmeasurable", "unreadable")


def test_view_rule_and_safe_names():
    assert view_from_filename("P01 Left-Bending.dcm") == ("left_bending", "file name")
    assert view_from_filename("p01_right_bend.png") == ("right_bending", "file name")
    assert view_from_filename("p01_left.png") == ("coronal", "default (coronal)")
    assert view_from_filename("bending.png")[0] == "coronal"  # side unknown: not guessed
    assert safe_folder_names(["a/b", "a:b", "A_B", ".x"]) == ["a_b", "a_b_2", "A_B_3", "x"]


def test_predict_manifest_end_to_end(tmp_path, checkpoint, synthetic_manifest):
    out = tmp_path / "out"
    res = run_script("predict.py", [f"checkpoint={checkpoint}", f"input={synthetic_manifest}",
                                    f"output_dir={out}", "tta_flip=true", "device=cpu"])
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["n_failed_inputs"] == 0
    views = {"coronal", "left_bending", "right_bending"}
    for cid in ("syn00000", "syn00001"):
        case = out / cid
        doc = json.loads((case / "measurements.json").read_text())
        check_measurements(doc, views)
        assert doc["tta_flip"] is True and doc["checkpoint"] == str(checkpoint)
        assert (case / "report.png").is_file()
        for entry in doc["views"].values():  # with TTA, each measured view has its halves' angles
            assert not entry["measured"] or set(entry["tta_halves"]) >= {"plain_main_deg", "mirrored_main_deg"}
        for v in views:
            mask = cv2.imread(str(case / f"{v}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (256, 128)  # original resolution, not the 64 x 32 model input
            assert set(np.unique(mask)) <= {0, 255}
            assert cv2.imread(str(case / f"{v}_overlay.png")).shape == (256, 128, 3)
    assert not list(out.rglob("*.tmp*"))  # atomic writes leave no temporaries
    assert len((out / "summary.csv").read_text().splitlines()) == 1 + 6


def _png(path: Path, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    path.write_bytes(buf.tobytes())


def test_folder_with_corrupt_file_reports_it_and_processes_the_rest(tmp_path, checkpoint, capsys):
    """In-process (the script's own path is covered above): exit code 1, the file named."""
    from tests.conftest import make_view_arrays

    folder = tmp_path / "in put"
    folder.mkdir()
    img, _ = make_view_arrays(96, 48, seed=1)
    _png(folder / "p01 left bending.png", img)
    _png(folder / "p02.png", img)
    good = (folder / "p02.png").read_bytes()
    (folder / "p03 broken.png").write_bytes(good[: len(good) // 2])  # truncated copy
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = predict_from_cli([f"checkpoint={checkpoint}", f"input={folder}", f"output_dir={out}",
                             "progress=false"])
    err = capsys.readouterr().err
    assert code == 1
    assert "p03 broken.png" in err and "truncated" in err
    summary = json.loads((out / "summary.json").read_text())
    assert [f["input"].endswith("p03 broken.png") for f in summary["failed_inputs"]] == [True]
    assert summary["ignored_files"] == ["notes.txt"]
    left = json.loads((out / "p01 left bending" / "measurements.json").read_text())
    check_measurements(left, {"left_bending"})
    assert left["inputs"]["left_bending"]["view_from"] == "file name"
    assert (out / "p01 left bending" / "left_bending_mask.png").is_file()
    plain = json.loads((out / "p02" / "measurements.json").read_text())
    assert plain["inputs"]["coronal"]["view_from"] == "default (coronal)"
    broken = json.loads((out / "p03 broken" / "measurements.json").read_text())
    check_measurements(broken, {"coronal"})
    assert broken["views"]["coronal"]["error_kind"] == "unreadable"


def test_manifest_masks_are_measured_and_an_empty_mask_is_an_error_entry(tmp_path, synthetic_manifest):
    """masks=manifest (no checkpoint): angles near the generator's; an empty mask is not a crash."""
    base = synthetic_manifest.parent
    cases = {c["case_id"]: c for c in json.loads((base / "cases.json").read_text())["cases"]}
    lines = synthetic_manifest.read_text().splitlines()
    empty = np.zeros((256, 128), np.uint8)
    _png(base / "masks" / "empty.png", empty)
    lines = [lines[0]] + [ln.replace("masks/syn00001_right_bending.png", "masks/empty.png")
                          for ln in lines[1:]]
    manifest = base / "manifest_empty.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code = predict_from_cli([f"input={manifest}", f"output_dir={out}", "masks=manifest",
                             "method=centreline", "progress=false"])
    assert code == 0  # an unmeasurable mask is a result, not a failed input
    for cid in ("syn00000", "syn00001"):
        doc = json.loads((out / cid / "measurements.json").read_text())
        check_measurements(doc, {"coronal", "left_bending", "right_bending"})
        cor = doc["views"]["coronal"]
        assert cor["measured"] and cor["source"] == "mask"
        assert abs(cor["tilt_range_deg"] - cases[cid]["cobb_deg"]["coronal"]) <= 5.0
        assert doc["flexibility"] is not None
    bad = json.loads((out / "syn00001" / "measurements.json").read_text())["views"]["right_bending"]
    assert bad["measured"] is False and bad["error_kind"] == "unmeasurable"
    assert "empty" in bad["error"]


def test_bad_arguments_are_config_errors(tmp_path, synthetic_manifest):
    with pytest.raises(ConfigError, match="checkpoint"):
        predict_from_cli([f"input={synthetic_manifest}", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigCompositionException, match="inptu"):  # the command exits 2 on it
        predict_from_cli(["inptu=x", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="input= is required"):
        predict_from_cli([f"output_dir={tmp_path}"])
    with pytest.raises(DataError, match="does not exist"):
        collect_inputs(tmp_path / "missing.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        collect_inputs(tmp_path / "empty")


def test_vertebra_label_checkpoint_reports_named_levels(tmp_path, synthetic_manifest):
    """With labels (an 18-class model; here first the generator's own label maps), every view gets
    curves named by vertebra in measurements.json and a picture with the level names."""
    import torch

    from r2mfnet.data.labels import read_label_map
    from r2mfnet.apps.predict_output import run_predictions
    from r2mfnet.models import create
    from r2mfnet.checkpoint import save_checkpoint

    cases, _, _ = collect_inputs(str(synthetic_manifest), "manifest")
    landmarks = {str(r.image): r.landmarks for r in load_manifest(synthetic_manifest, check_images=False)}

    def true_labels(iv, raw):
        return read_label_map(landmarks[str(iv.path)], raw.shape)

    out = tmp_path / "truth"
    run_predictions(cases[:1], out, None, {}, get_labels=true_labels, progress=False)
    doc = json.loads((out / cases[0].case_id / "measurements.json").read_text())
    for view, d in doc["views"].items():
        levels = d["vertebra_level"]
        assert levels["source"] == "vertebra_labels" and levels["labels"]["missing"] == []
        assert all(c["upper"] in LEVELS and c["lower"] in LEVELS for c in levels["curves"])
        assert (out / cases[0].case_id / f"{view}_levels.png").is_file()
    picture = cv2.imread(str(out / cases[0].case_id / "report_levels.png"))
    assert picture.shape[0] == 256 and picture.shape[1] >= 3 * 128

    # The CLI recognises an 18-class checkpoint and takes this path (an untrained one may fail
    # to measure: then the entry is an error, never a made-up curve).
    torch.manual_seed(0)
    model = create("unet", base_channels=4, depth=2, num_classes=18)
    ckpt = tmp_path / "labels.pt"
    save_checkpoint(ckpt, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False}})
    res = run_script("predict.py", [f"checkpoint={ckpt}", f"input={synthetic_manifest}",
                                    f"output_dir={tmp_path / 'cli'}", "device=cpu"])
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "cli" / "syn00000" / "measurements.json").read_text())
    assert all("vertebra_level" in d for d in doc["views"].values())
    assert (tmp_path / "cli" / "syn00000" / "report_levels.png").is_file()


def test_an_ensemble_predicts_end_to_end_and_is_recorded(tmp_path, checkpoint):
    """``ensemble=[...]``: the written mask is the ensemble's (the members' mean thresholded, the
    ensemble's own tests), and measurements.json and summary.json name the members."""
    import torch

    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.inference import build_predictor
    from r2mfnet.models import create
    from tests.deploy._helpers import spine_image, write_png

    torch.manual_seed(1)
    model = create("unet", base_channels=4, depth=2)
    member = tmp_path / "seed1.pt"
    save_checkpoint(member, {"model_config": dict(model.model_config), "model": model.state_dict(),
                             "preprocess": {"input_size": [64, 32], "clahe": False}})
    image = spine_image(150, 70, seed=1)
    write_png(tmp_path / "in" / "p01.png", image)
    out = tmp_path / "out"
    code = predict_from_cli([f"checkpoint={checkpoint}", f"ensemble=[{member}]", f"input={tmp_path / 'in'}",
                             f"output_dir={out}", "tta_flip=true", "device=cpu", "progress=false",
                             "dicom_seg=false"])
    assert code == 0
    doc = json.loads((out / "p01" / "measurements.json").read_text())
    check_measurements(doc, {"coronal"})
    assert doc["checkpoint"] == str(checkpoint) and doc["ensemble"] == [str(member)]
    assert json.loads((out / "summary.json").read_text())["ensemble"] == [str(member)]
    written = cv2.imread(str(out / "p01" / "coronal_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    ensemble = build_predictor(checkpoint=str(checkpoint), ensemble=[str(member)], device="cpu", tta_flip=True)
    single = build_predictor(checkpoint=str(checkpoint), device="cpu", tta_flip=True)
    assert np.array_equal(written, ensemble.predict_mask(image))
    assert not np.array_equal(written, single.predict_mask(image))  # the member changed the mask
