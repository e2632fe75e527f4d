"""Manifest loading: every problem of a crafted bad manifest is reported at once, with spreadsheet
row numbers; valid variants (BOM, CRLF, odd case, non-ASCII paths) load; writing round-trips."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import make_view_arrays
from r2mfnet.data.manifest import COLUMNS, ViewRecord, load_manifest, write_manifest
from r2mfnet.data.views import VIEWS
from r2mfnet.errors import DataError, ManifestError


def png(path: Path, arr: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    buf.tofile(str(path))
    return path.name


def test_tiny_manifest_loads(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    assert len(recs) == 9
    r = recs[0]
    assert isinstance(r, ViewRecord)
    assert r.case_id == "case 00" and r.view == "coronal" and r.quality == "high"
    assert r.image.is_absolute() and r.image.is_file() and "é" in r.image.name
    assert r.pixel_spacing_mm == 0.5 and r.patient_id == "patient 0" and r.split is None
    assert {x.view for x in recs} == set(VIEWS)


def test_bad_manifest_reports_every_problem(tmp_path):
    d = tmp_path / "bad set"
    img, mask = make_view_arrays(32, 24, seed=1)
    png(d / "ok.png", img)
    png(d / "ok_mask.png", mask)
    png(d / "ok2.png", make_view_arrays(32, 24, seed=2)[0])
    png(d / "ok3.png", make_view_arrays(32, 24, seed=3)[0])
    png(d / "ok4.png", make_view_arrays(32, 24, seed=4)[0])
    png(d / "ok5.png", make_view_arrays(32, 24, seed=5)[0])
    png(d / "ok6.png", make_view_arrays(32, 24, seed=6)[0])
    png(d / "ok7.png", make_view_arrays(32, 24, seed=7)[0])
    png(d / "ok8.png", make_view_arrays(32, 24, seed=8)[0])
    png(d / "ok9.png", make_view_arrays(32, 24, seed=9)[0])
    png(d / "small_mask.png", np.pad(np.full((10, 10), 255, np.uint8), 3))
    nb = mask.copy()
    nb[0, 0] = 128
    png(d / "nonbinary.png", nb)
    png(d / "empty_mask.png", np.zeros_like(mask))
    (d / "zero.png").write_bytes(b"")
    full = (d / "ok.png").read_bytes()
    (d / "trunc.png").write_bytes(full[: len(full) // 2])
    png(d / "flat.png", np.full((32, 24), 9, np.uint8))
    rows = [
        "case_id,view,image,mask,quality,split,pixel_spacing_mm",  # line 1
        "c1,coronal,ok.png,ok_mask.png,high,train,0.2",  # 2 valid
        "c2,coronal,missing.png,ok_mask.png,,,",  # 3 missing image
        "c3,coronal,zero.png,ok_mask.png,,,",  # 4 zero-byte
        "c4,coronal,trunc.png,ok_mask.png,,,",  # 5 truncated
        "c5,sideways,ok2.png,ok_mask.png,,,",  # 6 unknown view
        "c6,coronal,ok3.png,ok_mask.png,superb,,",  # 7 unknown quality
        "c7,coronal,ok4.png,ok_mask.png,,training,",  # 8 bad split
        "c8,coronal,ok5.png,ok_mask.png,,,-1",  # 9 bad spacing
        "c1,coronal,ok6.png,ok_mask.png,,,",  # 10 duplicate (case, view)
        "c9,coronal,ok7.png,small_mask.png,,,",  # 11 size mismatch
        "c10,coronal,ok8.png,nonbinary.png,,,",  # 12 non-binary mask
        "c11,coronal,ok9.png,empty_mask.png,,,",  # 13 empty mask
        "c12,coronal,flat.png,ok_mask.png,,,",  # 14 constant image
        "c13,coronal,ok.png,,,,",  # 15 empty mask cell + image reused
        "c14,coronal,ok2.png,ok_mask.png,,,abc",  # 16 non-numeric spacing
        "c15,coronal,ok3.png,ok_mask.png,,,,extra",  # 17 too many cells
        ",coronal,ok4.png,ok_mask.png,,,",  # 18 empty case_id
        "c16,coronal,ok5.png,no_mask.png,,,",  # 19 missing mask file
    ]
    csv_path = d / "manifest.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError) as ei:
        load_manifest(csv_path)
    err = ei.value
    assert isinstance(err, DataError)
    text = str(err)
    assert "nothing was loaded" in text.lower()
    expected = {
        3: "image file not found",
        4: "zero-byte",
        5: "truncated",
        6: "unknown view 'sideways'; allowed: coronal, left_bending, right_bending",
        7: "unknown quality 'superb'",
        8: "bad split 'training'",
        9: "bad pixel_spacing_mm '-1'",
        10: "duplicate (case_id 'c1', view 'coronal'), first seen at row 2",
        11: "differs from image size",
        12: "non-binary mask (values 0, 128, 255",
        13: "empty mask",
        14: "constant image",
        15: "empty mask path",
        16: "bad pixel_spacing_mm 'abc'",
        17: "has 8 cell(s) but the header has 7",
        18: "empty case_id",
        19: "mask file not found",
    }
    for row, needle in expected.items():
        hits = [p for p in err.problems if p.startswith(f"row {row}") and needle in p]
        assert hits, f"row {row}: expected a problem containing {needle!r}; got:\n{text}"
    assert any(p.startswith("row 15") and "also used by row 2" in p for p in err.problems)
    assert not any(p.startswith("row 2 ") or p.startswith("row 2:") for p in err.problems)
    # file names are in the messages
    assert "zero.png" in text and "trunc.png" in text and "missing.png" in text


def test_missing_and_unknown_columns(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("case_id,image,Colour\nc1,a.png,red\n", encoding="utf-8")
    with pytest.raises(ManifestError) as ei:
        load_manifest(p)
    text = str(ei.value)
    assert "missing required column(s) view, mask" in text
    assert "unknown column(s) 'colour'" in text and "allowed columns: " + ", ".join(COLUMNS) in text
    p.write_text("case_id;view;image;mask\nc;coronal;a;b\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="semicolon"):
        load_manifest(p)


def test_mask_column_optional_without_require_masks(tmp_path):
    d = tmp_path
    png(d / "a.png", make_view_arrays(20, 20)[0])
    p = d / "m.csv"
    p.write_text("case_id,view,image\nc1,coronal,a.png\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="mask"):
        load_manifest(p)
    recs = load_manifest(p, require_masks=False)
    assert recs[0].mask is None


def test_bom_crlf_case_and_spacing_tolerated(tmp_path):
    d = tmp_path / "crlf"
    img, mask = make_view_arrays(20, 16)
    png(d / "images" / "a b.png", img)
    png(d / "masks" / "a b.png", mask)
    text = "Case_ID , View,IMAGE,mask\r\nc1, Left-Bending ,images/a b.png,masks/a b.png\r\n\r\n"
    (d / "m.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    recs = load_manifest(d / "m.csv")
    assert len(recs) == 1 and recs[0].view == "left_bending"


def test_not_utf8_and_missing_manifest(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("case_id,view,image,mask\ncaf\xe9,coronal,a,b\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not valid UTF-8"):
        load_manifest(p)
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ManifestError, match="empty"):
        load_manifest(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("case_id,view,image,mask\n")
    with pytest.raises(ManifestError, match="no rows"):
        load_manifest(tmp_path / "header.csv")


def test_patient_split_conflicts_reported(tmp_path):
    d = tmp_path
    rows = ["case_id,view,image,mask,split,patient_id"]
    for i, (case, view, split, patient) in enumerate(
        [("a", "coronal", "train", "p1"), ("a", "left_bending", "test", "p1"), ("b", "coronal", "val", "p2"),
         ("b", "left_bending", "val", "p3")]
    ):
        img, mask = make_view_arrays(16, 16, seed=i)
        png(d / f"i{i}.png", img)
        png(d / f"m{i}.png", mask)
        rows.append(f"{case},{view},i{i}.png,m{i}.png,{split},{patient}")
    (d / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ManifestError) as ei:
        load_manifest(d / "m.csv")
    text = str(ei.value)
    assert "patient 'p1' is in more than one split" in text
    assert "row 5 (case 'b'): patient_id 'p3' differs from 'p2'" in text


def test_check_images_false_skips_decoding(tmp_path):
    d = tmp_path
    (d / "a.png").write_bytes(b"not really")
    (d / "m.png").write_bytes(b"not really")
    (d / "x.csv").write_text("case_id,view,image,mask\nc,coronal,a.png,m.png\n")
    assert len(load_manifest(d / "x.csv", check_images=False)) == 1
    with pytest.raises(ManifestError, match="unreadable image"):
        load_manifest(d / "x.csv")


def test_write_manifest_round_trip(tiny_manifest, tmp_path):
    recs = load_manifest(tiny_manifest)
    out = tmp_path / "elsewhere" / "copy ü.csv"
    write_manifest(recs, out)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert str(tmp_path) not in text  # relative paths
    again = load_manifest(out)
    assert again == recs
    # no temporary files left behind
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_write_manifest_spells_out_patient_id_on_request(tiny_manifest, tmp_path):
    import dataclasses

    recs = [dataclasses.replace(r, patient_id=r.case_id) for r in load_manifest(tiny_manifest)]
    short = write_manifest(recs, tmp_path / "short.csv")
    full = write_manifest(recs, tmp_path / "full.csv", explicit_patient_id=True)
    assert {line.rsplit(",", 1)[1] for line in short.read_text().splitlines()[1:]} == {""}
    assert [line.rsplit(",", 1)[1] for line in full.read_text().splitlines()[1:]] == [
        r.case_id for r in recs]
    assert load_manifest(short) == load_manifest(full) == recs


def test_landmarks_column(tmp_path):
    import json

    d = tmp_path
    img, mask = make_view_arrays(20, 20)
    png(d / "a.png", img)
    png(d / "m.png", mask)
    corners = [[[1, 1], [5, 1], [1, 4], [5, 4]]] * 17
    (d / "good.json").write_text(json.dumps({"levels": [], "corners": corners}))
    (d / "bad.json").write_text("{not json")
    (d / "x.csv").write_text(
        "case_id,view,image,mask,landmarks\nc,coronal,a.png,m.png,good.json\n"
    )
    assert load_manifest(d / "x.csv")[0].landmarks == d / "good.json"
    (d / "x.csv").write_text("case_id,view,image,mask,landmarks\nc,coronal,a.png,m.png,bad.json\n")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(d / "x.csv")
