"""Synthetic generator: determinism, ground-truth consistency, bending behaviour, files, caching."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from r2mfnet.data.synthetic import (
    MANIFEST_COLUMNS,
    ensure_dataset,
    generate_case,
    generate_dataset,
    make_contact_sheet,
)
from r2mfnet.data.synthetic.patient import sample_patient
from r2mfnet.data.synthetic.pose import curve_cobb_deg, view_geometry
from r2mfnet.data.views import LEVELS, VIEWS
from r2mfnet.errors import ConfigError
from r2mfnet.geometry import cobb_from_landmarks

H, W = 128, 64
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("syn") / "d", num_cases=3, seed=7,
                            image_height=H, image_width=W, num_workers=0)


def test_same_seed_same_arrays_and_different_seed_differs():
    a = generate_case(1, seed=3, image_height=H, image_width=W)
    b = generate_case(1, seed=3, image_height=H, image_width=W)
    c = generate_case(1, seed=4, image_height=H, image_width=W)
    for v in VIEWS:
        np.testing.assert_array_equal(a["views"][v]["image"], b["views"][v]["image"])
        np.testing.assert_array_equal(a["views"][v]["mask"], b["views"][v]["mask"])
        assert a["views"][v]["corners"] == b["views"][v]["corners"]
    assert a["record"] == b["record"]
    assert not np.array_equal(a["views"]["coronal"]["image"], c["views"]["coronal"]["image"])


def test_files_are_byte_identical_for_a_seed(tmp_path, dataset):
    again = generate_dataset(tmp_path / "again", num_cases=3, seed=7, image_height=H, image_width=W,
                             num_workers=0)
    root = dataset.parent
    for rel in ["manifest.csv", "cases.json", "images/syn00002_left_bending.png",
                "masks/syn00001_coronal.png", "landmarks/syn00000_right_bending.json"]:
        assert (root / rel).read_bytes() == (again.parent / rel).read_bytes(), rel


def test_case_does_not_depend_on_num_cases(tmp_path, dataset):
    # Case 2 of the 3-case set equals case 2 of a 4-case set with that seed, file for file, and
    # the manifest rows of cases 0-2 are the same; the 4-case set has one case more.
    bigger = generate_dataset(tmp_path / "four", num_cases=4, seed=7, image_height=H, image_width=W,
                              num_workers=0)
    small_root, big_root = dataset.parent, bigger.parent
    for v in VIEWS:
        for rel in (f"images/syn00002_{v}.png", f"masks/syn00002_{v}.png", f"landmarks/syn00002_{v}.json"):
            assert (small_root / rel).read_bytes() == (big_root / rel).read_bytes(), rel
    with open(dataset, newline="") as fh:
        small_rows = list(csv.DictReader(fh))
    with open(bigger, newline="") as fh:
        big_rows = list(csv.DictReader(fh))
    assert len(small_rows) == 3 * len(VIEWS) and len(big_rows) == 4 * len(VIEWS)
    assert [r for r in big_rows if r["case_id"] != "syn00003"] == small_rows
    # and it is a different case from its neighbours (the test would pass for a constant generator)
    assert (big_root / "images/syn00003_coronal.png").read_bytes() != (small_root / "images/syn00002_coronal.png").read_bytes()


def test_manifest_columns_and_files_exist(dataset):
    with open(dataset, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        rows = list(reader)
    assert len(rows) == 3 * len(VIEWS)
    assert {r["view"] for r in rows} == set(VIEWS)
    for r in rows:
        for key in ("image", "mask", "landmarks"):
            assert not Path(r[key]).is_absolute()
            assert (dataset.parent / r[key]).is_file()
        assert r["split"] == ""
        assert r["patient_id"] == r["case_id"]
        assert r["quality"] in ("high", "medium", "low")
        assert 0.2 < float(r["pixel_spacing_mm"]) < 20
        img = cv2.imread(str(dataset.parent / r["image"]), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint16 and img.shape == (H, W)
    # the exact spelling (written by data.manifest.write_manifest): patient_id spelled out, "\n"
    text = dataset.read_bytes().decode("utf-8")
    q, s = rows[0]["quality"], rows[0]["pixel_spacing_mm"]
    assert text.splitlines()[1] == (f"syn00000,coronal,images/syn00000_coronal.png,"
                                    f"masks/syn00000_coronal.png,{q},,{s},"
                                    f"landmarks/syn00000_coronal.json,syn00000")
    assert "\r" not in text and text.endswith("syn00002\n")


def test_mask_binary_nonempty_and_landmarks_inside(dataset):
    root = dataset.parent
    kernel = np.ones((3, 3), np.uint8)
    for case in ("syn00000", "syn00001", "syn00002"):
        for v in VIEWS:
            mask = cv2.imread(str(root / "masks" / f"{case}_{v}.png"), cv2.IMREAD_UNCHANGED)
            assert mask.dtype == np.uint8 and mask.shape == (H, W)
            assert set(np.unique(mask)) == {0, 255}
            lm = json.loads((root / "landmarks" / f"{case}_{v}.json").read_text())
            assert lm["levels"] == list(LEVELS)
            corners = np.asarray(lm["corners"])
            assert corners.shape == (17, 4, 2)
            grown = cv2.dilate(mask, kernel) > 0
            xy = np.round(corners.reshape(-1, 2)).astype(int)
            assert np.all((xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H))
            assert grown[xy[:, 1], xy[:, 0]].all(), f"{case} {v}: corner outside the mask"
            centres = np.round(corners.mean(axis=1)).astype(int)
            assert (mask[centres[:, 1], centres[:, 0]] > 0).all()


def test_stored_cobb_matches_landmarks_and_request(dataset):
    root = dataset.parent
    cases = json.loads((root / "cases.json").read_text())["cases"]
    for rec in cases:
        for v in VIEWS:
            lm = json.loads((root / "landmarks" / f"{rec['case_id']}_{v}.json").read_text())
            ref = cobb_from_landmarks(np.asarray(lm["corners"]))[0]
            assert abs(lm["cobb_deg"] - ref) < 1.0
            assert rec["cobb_deg"][v] == lm["cobb_deg"]
        assert abs(rec["cobb_deg"]["coronal"] - rec["requested_cobb_deg"]) < 3.5


@pytest.mark.parametrize("seed", range(12))
def test_requested_cobb_reproduced_in_coronal_view(seed):
    rng = np.random.default_rng(seed)
    p = sample_patient(rng, "high")
    g = view_geometry(p, "coronal", (H * 2, W * 2))
    main = p.curves[p.main_curve]
    assert abs(cobb_from_landmarks(g.corners)[0] - main.cobb_deg) < 3.5
    assert abs(curve_cobb_deg(g.corners, main.upper, main.lower) - main.cobb_deg) < 3.5


@pytest.mark.parametrize("seed", range(12))
def test_bending_toward_the_convexity_straightens_the_curve(seed):
    """Right bending corrects curves convex to the patient's right, left bending left ones."""
    p = sample_patient(np.random.default_rng(100 + seed), "medium")
    main = p.curves[p.main_curve]
    if main.cobb_deg < 10:
        pytest.skip("curve too small to judge")
    corrective = "right_bending" if main.convexity == "right" else "left_bending"
    other = "left_bending" if corrective == "right_bending" else "right_bending"
    cobb = {v: curve_cobb_deg(view_geometry(p, v, (H, W)).corners, main.upper, main.lower)
            for v in VIEWS}
    assert cobb[corrective] < cobb["coronal"] - 2.0
    assert cobb[corrective] < cobb[other]
    expected = main.cobb_deg * (1 - main.flexibility)
    assert abs(cobb[corrective] - expected) < 3.5


def test_bending_tilts_the_trunk_toward_the_bending_side():
    # Patient's right is displayed on the image left: right bending moves T1 to the image left.
    p = sample_patient(np.random.default_rng(5), "high")
    shift = {v: (lambda g: g.centres[0, 0] - g.centres[-1, 0])(view_geometry(p, v, (512, 256)))
             for v in VIEWS}
    assert shift["right_bending"] < shift["coronal"] < shift["left_bending"]


def test_ensure_dataset_reuses_folder(tmp_path):
    m1 = ensure_dataset(tmp_path, num_cases=2, seed=1, image_height=H, image_width=W, num_workers=0)
    stamp = m1.stat().st_mtime_ns
    img_stamp = (m1.parent / "images" / "syn00000_coronal.png").stat().st_mtime_ns
    m2 = ensure_dataset(tmp_path, num_cases=2, seed=1, image_height=H, image_width=W, num_workers=0)
    assert m1 == m2
    assert m2.stat().st_mtime_ns == stamp
    assert (m2.parent / "images" / "syn00000_coronal.png").stat().st_mtime_ns == img_stamp
    assert not any(p.name.startswith(".tmp_") for p in tmp_path.iterdir())
    m3 = ensure_dataset(tmp_path, num_cases=2, seed=2, image_height=H, image_width=W, num_workers=0)
    assert m3.parent != m1.parent


def test_invalid_parameters_raise_config_error(tmp_path):
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path, num_cases=0)
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path, num_cases=1, image_height=128, image_width=512)
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path, num_cases=1, quality_weights=(1, 0))


def test_contact_sheet(tmp_path, dataset):
    out = make_contact_sheet(dataset, tmp_path / "sheet.png", num_cases=2, tile_height=96)
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 96


def test_script_rejects_unknown_key(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic.py"),
                        f"output_dir={tmp_path}", "num_case=3"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown key" in r.stderr and "num_case" in r.stderr
    assert "Traceback" not in r.stderr


def test_script_generates(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic.py"),
                        f"output_dir={tmp_path}", "num_cases=1", "image_size=[96,48]",
                        "contact_sheet=true"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "manifest.csv").is_file() and (tmp_path / "contact_sheet.png").is_file()
