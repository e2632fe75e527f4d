"""Readers: PNG/JPEG/TIFF at 8 and 16 bit, DICOM (rescale, MONOCHROME1, spacing), and every
input problem raising a DataError that names the file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from r2mfnet.data import io as dio
from r2mfnet.data.io import read_image, read_mask
from r2mfnet.errors import DataError


def write(path: Path, arr: np.ndarray, ext: str | None = None) -> Path:
    ok, buf = cv2.imencode(ext or path.suffix, arr)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))
    return path


def gradient(h=40, w=30, dtype=np.uint8, maxv=255):
    yy, xx = np.mgrid[:h, :w]
    return ((yy * w + xx) / (h * w - 1) * maxv).astype(dtype)


# ---------------------------------------------------------------------------- formats


def test_png_8bit(tmp_path):
    arr = gradient()
    img = read_image(write(tmp_path / "a.png", arr))
    assert img.array.dtype == np.float32 and img.array.shape == arr.shape
    assert img.bit_depth == 8 and img.pixel_spacing_mm is None
    np.testing.assert_array_equal(img.array, arr.astype(np.float32))
    assert img.source.endswith("a.png")


def test_png_16bit_keeps_full_range(tmp_path):
    arr = gradient(dtype=np.uint16, maxv=65535)
    img = read_image(write(tmp_path / "a16.png", arr))
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.array, arr.astype(np.float32))
    assert img.array.max() > 60000


def test_tiff_16bit_and_jpeg(tmp_path):
    arr = gradient(dtype=np.uint16, maxv=4095)  # 12-bit data in 16-bit TIFF
    img = read_image(write(tmp_path / "a.tif", arr))
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.array, arr.astype(np.float32))
    jpg = read_image(write(tmp_path / "a.jpg", gradient(64, 64)))
    assert jpg.array.shape == (64, 64) and jpg.bit_depth == 8


def test_colour_to_gray_and_alpha_dropped(tmp_path):
    g = gradient()
    bgr = np.stack([g, g, g], axis=2)
    np.testing.assert_array_equal(read_image(write(tmp_path / "c.png", bgr)).array, g.astype(np.float32))
    bgra = np.dstack([bgr, np.full_like(g, 7)])
    np.testing.assert_array_equal(read_image(write(tmp_path / "ca.png", bgra)).array, g.astype(np.float32))
    colour = np.zeros((10, 10, 3), np.uint8)
    colour[..., 2] = 200  # red in BGR
    colour[0, 0] = 0
    out = read_image(write(tmp_path / "red.png", colour)).array
    assert out.ndim == 2 and abs(out[5, 5] - 0.299 * 200) < 0.5


def test_content_not_suffix_decides(tmp_path):
    p = tmp_path / "really_a_png.jpg"
    write(p, gradient(), ext=".png")
    assert read_image(p).array.shape == (40, 30)


def test_non_ascii_and_space_paths(tmp_path):
    p = write(tmp_path / "dossier é ü" / "image ñ 東京.png", gradient())
    assert read_image(p).array.shape == (40, 30)
    m = write(tmp_path / "dossier é ü" / "masque ñ.png", (gradient() > 100).astype(np.uint8))
    assert read_mask(m).dtype == bool


# ---------------------------------------------------------------------------- DICOM


def make_dicom(path: Path, pixels: np.ndarray, photometric="MONOCHROME2", slope=1.0, intercept=0.0,
               spacing=(0.2, 0.2), window=None, preamble=True, imager_spacing=None):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128 if preamble else None)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleSlope = str(slope)
    ds.RescaleIntercept = str(intercept)
    if spacing is not None:
        ds.PixelSpacing = [str(spacing[0]), str(spacing[1])]
    if imager_spacing is not None:
        ds.ImagerPixelSpacing = [str(imager_spacing), str(imager_spacing)]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = str(window[0]), str(window[1])
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if not _pydicom3():
        ds.is_little_endian, ds.is_implicit_VR = True, False
    pydicom.dcmwrite(str(path), ds, enforce_file_format=preamble) if _pydicom3() else ds.save_as(
        str(path), write_like_original=not preamble
    )
    return path


def _pydicom3() -> bool:
    import pydicom

    return int(pydicom.__version__.split(".")[0]) >= 3


def test_dicom_monochrome1_with_rescale(tmp_path):
    raw = gradient(20, 16, dtype=np.uint16, maxv=4095)
    p = make_dicom(tmp_path / "x ray é.dcm", raw, photometric="MONOCHROME1", slope=2.0, intercept=-100.0)
    img = read_image(p)
    rescaled = raw.astype(np.float64) * 2.0 - 100.0
    lo, hi = -100.0, 4095 * 2.0 - 100.0
    np.testing.assert_allclose(img.array, (lo + hi) - rescaled, rtol=0, atol=1e-3)
    # inverted: the darkest stored value is now the brightest
    assert img.array[0, 0] == img.array.max() and img.array[-1, -1] == img.array.min()
    assert img.bit_depth == 12
    assert img.pixel_spacing_mm == pytest.approx(0.2)


def test_dicom_monochrome2_window_and_imager_spacing(tmp_path):
    raw = gradient(20, 16, dtype=np.uint16, maxv=4095)
    p = make_dicom(tmp_path / "w.dcm", raw, spacing=None, imager_spacing=0.15, window=(2000, 1000))
    plain = read_image(p)
    np.testing.assert_allclose(plain.array, raw.astype(np.float32))
    assert plain.pixel_spacing_mm == pytest.approx(0.15)
    win = read_image(p, apply_window=True)
    assert win.array.min() == pytest.approx(1500) and win.array.max() == pytest.approx(2500)


def test_dicom_detected_by_magic_without_suffix(tmp_path):
    raw = gradient(12, 10, dtype=np.uint16, maxv=4095)
    p = make_dicom(tmp_path / "IM0001", raw)
    assert read_image(p).array.shape == (12, 10)


def test_dicom_without_preamble_by_suffix(tmp_path):
    raw = gradient(12, 10, dtype=np.uint16, maxv=4095)
    p = make_dicom(tmp_path / "bare.dcm", raw, preamble=False)
    assert p.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_image(p).array, raw.astype(np.float32))


def test_truncated_dicom(tmp_path):
    raw = gradient(64, 64, dtype=np.uint16, maxv=4095)
    p = make_dicom(tmp_path / "t.dcm", raw)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 3000])
    with pytest.raises(DataError, match="t.dcm"):
        read_image(p)


# ---------------------------------------------------------------------------- bad inputs


def test_missing_and_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="folder"):
        read_image(tmp_path)


def test_zero_byte(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="zero-byte") as ei:
        read_image(p)
    assert "empty.png" in str(ei.value) and ei.value.path == str(p)
    with pytest.raises(DataError, match="zero-byte"):
        read_mask(p)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_files(tmp_path, ext):
    rng = np.random.default_rng(0)
    arr = (rng.random((200, 150)) * 255).astype(np.uint8)
    p = write(tmp_path / f"full{ext}", arr)
    data = p.read_bytes()
    for cut in (len(data) // 2, len(data) - 5):
        q = tmp_path / f"cut{cut}{ext}"
        q.write_bytes(data[:cut])
        with pytest.raises(DataError, match=f"cut{cut}") as ei:
            read_image(q)
        msg = str(ei.value).lower()
        assert "truncat" in msg or "corrupt" in msg or "decode" in msg


def test_undecodable_and_unknown_format(tmp_path):
    p = tmp_path / "junk.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(DataError, match="junk.png"):
        read_image(p)
    q = tmp_path / "notes.txt"
    q.write_text("hello, I am not an image")
    with pytest.raises(DataError, match="unrecognised image format"):
        read_image(q)


def test_constant_image(tmp_path):
    p = write(tmp_path / "flat.png", np.full((20, 20), 77, np.uint8))
    with pytest.raises(DataError, match="constant image"):
        read_image(p)


def test_nan_image(tmp_path):
    arr = np.ones((10, 10), np.float32)
    arr[3, 3] = np.nan
    arr[0, 0] = 0.0
    p = write(tmp_path / "nan.tif", arr)
    with pytest.raises(DataError, match="NaN"):
        read_image(p)
    arr[3, 3] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        read_image(write(tmp_path / "inf.tif", arr))


def test_huge_image_rejected_before_decoding(tmp_path, monkeypatch):
    # forge a PNG header claiming 30000 x 100 px: rejected from the header alone
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", 100, 30000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    p = tmp_path / "huge.png"
    p.write_bytes(data)
    with pytest.raises(DataError, match="larger than the limit"):
        read_image(p)
    # and a real image above a lowered limit
    monkeypatch.setattr(dio, "MAX_IMAGE_SIDE", 100)
    with pytest.raises(DataError, match="larger than the limit"):
        read_image(write(tmp_path / "big.jpg", gradient(120, 50)))


# ---------------------------------------------------------------------------- masks


@pytest.mark.parametrize("hi,dtype", [(1, np.uint8), (255, np.uint8), (65535, np.uint16)])
def test_mask_levels_accepted(tmp_path, hi, dtype):
    m = np.zeros((12, 10), dtype)
    m[3:8, 2:6] = hi
    out = read_mask(write(tmp_path / f"m{hi}.png", m))
    assert out.dtype == bool and out.sum() == 20


def test_empty_mask_reads_as_all_false(tmp_path):
    out = read_mask(write(tmp_path / "e.png", np.zeros((5, 5), np.uint8)))
    assert out.dtype == bool and not out.any()


def test_non_binary_mask(tmp_path):
    m = np.zeros((12, 10), np.uint8)
    m[2:4] = 128
    m[5:7] = 255
    with pytest.raises(DataError, match=r"non-binary mask \(values 0, 128, 255"):
        read_mask(write(tmp_path / "nb.png", m))
    m2 = np.full((12, 10), 3, np.uint8)
    m2[0] = 9
    with pytest.raises(DataError, match="non-binary"):
        read_mask(write(tmp_path / "nb2.png", m2))


def test_jpeg_mask_hint(tmp_path):
    m = np.zeros((64, 64), np.uint8)
    m[10:50, 20:40] = 255
    p = write(tmp_path / "m.jpg", m)
    with pytest.raises(DataError, match="save masks as PNG"):
        read_mask(p)
