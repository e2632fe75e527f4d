"""Fuzz tests: whatever bytes a user hands the readers or the manifest loader, only the project's
own error type (R2MFNetError and subclasses) may escape; a reader's refusal is one line that
names the file, and reading writes nothing beside it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r2mfnet.data.io import read_image, read_mask
from r2mfnet.data.manifest import load_manifest
from r2mfnet.errors import R2MFNetError

import os

FUZZ = settings(
    max_examples=int(os.environ.get("R2MFNET_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("R2MFNET_FUZZ_EXAMPLES") is None,
)
SUFFIXES = [".png", ".jpg", ".tif", ".bmp", ".dcm", "", ".txt"]


def _valid_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    img8 = (rng.random((24, 20)) * 255).astype(np.uint8)
    img16 = (rng.random((24, 20)) * 65535).astype(np.uint16)
    out = {}
    for ext, arr in ((".png", img8), (".png", img16), (".jpg", img8), (".tif", img16), (".bmp", img8)):
        ok, buf = cv2.imencode(ext, arr)
        assert ok
        out[f"{ext}{arr.dtype}"] = buf.tobytes()
    from tests.data.test_data_io import make_dicom  # the DICOM writer used by the reader tests
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = make_dicom(Path(d) / "x.dcm", (rng.random((16, 12)) * 4095).astype(np.uint16),
                       photometric="MONOCHROME1", slope=1.5, intercept=-3)
        out[".dcm"] = p.read_bytes()
    return out


VALID = _valid_files()


def _check_readers(path) -> None:
    before = sorted(p.name for p in path.parent.iterdir())
    for reader in (read_image, read_mask):
        try:
            reader(path)
        except R2MFNetError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert str(path) in message, message
    assert sorted(p.name for p in path.parent.iterdir()) == before


@FUZZ
@given(data=st.binary(min_size=0, max_size=600), suffix=st.sampled_from(SUFFIXES))
def test_readers_random_bytes(tmp_path, data, suffix):
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    _check_readers(p)


@st.composite
def mutated(draw):
    key = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[key])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "magic"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "truncate":
            del data[pos:]
        elif op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        else:  # corrupt a header field near the start
            hp = draw(st.integers(0, min(len(data) - 1, 300)))
            data[hp] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
    suffix = ".dcm" if key == ".dcm" else key[:4]
    return bytes(data), suffix


@FUZZ
@given(sample=mutated())
def test_readers_mutated_valid_files(tmp_path, sample):
    data, suffix = sample
    p = tmp_path / f"mutant{suffix}"
    p.write_bytes(data)
    _check_readers(p)


@pytest.fixture
def fuzz_folder(tmp_path):
    from tests.conftest import make_view_arrays

    d = tmp_path / "fuzz"
    d.mkdir()
    img, mask = make_view_arrays(20, 16)
    for name, arr in (("a.png", img), ("m.png", mask), ("b.png", img[::-1].copy())):
        ok, buf = cv2.imencode(".png", arr)
        buf.tofile(str(d / name))
    (d / "zero.png").write_bytes(b"")
    (d / "lm.json").write_text('{"corners": [[[0, 0], [1, 0], [0, 1], [1, 1]]]}')
    return d


CELLS = st.one_of(
    st.sampled_from(
        ["a.png", "m.png", "b.png", "zero.png", "lm.json", "missing.png", "../a.png", "/abs/none.png",
         "coronal", "left_bending", "right-bending", "Coronal", "high", "low", "train", "test", "val",
         "0.2", "-1", "nan", "inf", "1e400", "", " ", "c1", "c2", "\"", "a,b", "é", "\x00", "\r", "."]
    ),
    st.text(max_size=12),
)
HEADERS = st.lists(
    st.sampled_from(["case_id", "view", "image", "mask", "quality", "split", "pixel_spacing_mm",
                     "landmarks", "patient_id", "CASE_ID", "extra", ""]),
    min_size=0, max_size=10,
)


@FUZZ
@given(text=st.text(max_size=400))
def test_manifest_random_text(fuzz_folder, text):
    p = fuzz_folder / "manifest.csv"
    p.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    for require_masks in (True, False):
        try:
            load_manifest(p, require_masks=require_masks)
        except R2MFNetError:
            pass


@FUZZ
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, min_size=0, max_size=10), max_size=6),
       crlf=st.booleans(), bom=st.booleans())
def test_manifest_structured_rows(fuzz_folder, header, rows, crlf, bom):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    data = buf.getvalue().encode("utf-8", errors="surrogatepass")
    p = fuzz_folder / "manifest.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    try:
        recs = load_manifest(p)
    except R2MFNetError:
        return
    assert all(r.image.is_file() for r in recs)


@FUZZ
@given(data=st.binary(max_size=300))
def test_manifest_random_bytes(fuzz_folder, data):
    p = fuzz_folder / "manifest.csv"
    p.write_bytes(data)
    try:
        load_manifest(p)
    except R2MFNetError:
        pass
