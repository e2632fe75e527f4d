"""DICOM reader branches: signed pixels, multi-frame, no pixel data, a compressed transfer syntax
without its decoder, YBR colour, and the pixel spacing (square, near-square, anisotropic)."""
from __future__ import annotations

import numpy as np
import pytest

from r2mfnet.data.io import ANISOTROPY_TOLERANCE, read_image
from r2mfnet.errors import DataError


def _dataset(path, pixels: np.ndarray, **attrs):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = attrs.pop("transfer_syntax", ExplicitVRLittleEndian)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    shape = (4, 3) if pixels is None else pixels.shape
    rows, cols = shape[-3:-1] if attrs.get("SamplesPerPixel", 1) == 3 else shape[-2:]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = ["0.2", "0.2"]
    for key, value in attrs.items():
        setattr(ds, key, value)
    if "PixelData" not in attrs and pixels is not None:
        ds.PixelData = pixels.tobytes()
    pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    return path


def _refused(path) -> str:
    with pytest.raises(DataError) as err:
        read_image(path)
    message = str(err.value)
    assert message.startswith(f"file '{path}': ") and "\n" not in message
    return message


def test_signed_pixels_keep_their_sign_and_invert_over_the_signed_range(tmp_path):
    raw = np.array([[-2048, -1, 0], [1, 1000, 2047]], np.int16)
    p = _dataset(tmp_path / "signed.dcm", raw, PixelRepresentation=1)
    np.testing.assert_array_equal(read_image(p).array, raw.astype(np.float32))
    # MONOCHROME1 over the 12-bit signed range [-2048, 2047]: v -> (-2048 + 2047) - v = -1 - v
    p1 = _dataset(tmp_path / "signed_m1.dcm", raw, PixelRepresentation=1, PhotometricInterpretation="MONOCHROME1")
    np.testing.assert_array_equal(read_image(p1).array, (-1 - raw.astype(np.int32)).astype(np.float32))


def test_multi_frame_is_refused(tmp_path):
    frames = np.zeros((2, 4, 3), np.uint16)
    p = _dataset(tmp_path / "cine.dcm", frames, NumberOfFrames=2)
    assert "multi-frame DICOM (2 frames) is not supported; export one frame per file" in _refused(p)


def test_no_pixel_data_is_refused(tmp_path):
    p = _dataset(tmp_path / "report.dcm", None)
    assert "DICOM file has no pixel data" in _refused(p)


def test_compressed_without_a_decoder_names_the_transfer_syntax(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    fake = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])  # a J2K start, then nothing decodable
    p = _dataset(tmp_path / "j2k.dcm", np.zeros((4, 3), np.uint16), transfer_syntax=JPEG2000Lossless,
                 PixelData=fake)
    message = _refused(p)
    assert f"cannot decode the DICOM pixel data (transfer syntax {JPEG2000Lossless}" in message
    assert "pip install pylibjpeg" in message and "gdcmconv --raw" in message


def test_ybr_colour_reads_as_the_luma_of_its_rgb(tmp_path):
    from pydicom.pixels import convert_color_space

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    p = _dataset(tmp_path / "ybr.dcm", ybr, SamplesPerPixel=3, PhotometricInterpretation="YBR_FULL",
                 PlanarConfiguration=0, BitsAllocated=8, BitsStored=8, HighBit=7)
    img = read_image(p)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # BT.601 on R, G, B
    assert img.array.shape == (6, 5) and img.bit_depth == 8
    assert np.abs(img.array - luma).max() < 2.0  # YBR is stored as 8-bit: a rounding step each way
    # the luma of Y, Cb, Cr read as R, G, B (no conversion), or of a second conversion, differs
    wrong = ybr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(img.array - wrong).max() > 20


def test_square_and_near_square_spacing(tmp_path):
    px = np.arange(12, dtype=np.uint16).reshape(4, 3)
    assert read_image(_dataset(tmp_path / "sq.dcm", px, PixelSpacing=["0.15", "0.15"])).pixel_spacing_mm == 0.15
    # a rounding difference within the tolerance is read as square, at the mean
    near = _dataset(tmp_path / "near.dcm", px, PixelSpacing=["0.2", "0.2019"])
    assert 0.0019 / 0.2 < ANISOTROPY_TOLERANCE
    assert read_image(near).pixel_spacing_mm == pytest.approx(0.20095)
    none = _dataset(tmp_path / "none.dcm", px, PixelSpacing="")
    assert read_image(none).pixel_spacing_mm is None


@pytest.mark.parametrize("key", ["PixelSpacing", "ImagerPixelSpacing"])
def test_anisotropic_spacing_is_refused_with_one_line(tmp_path, key):
    attrs = {key: ["0.2", "0.3"]}
    if key == "ImagerPixelSpacing":
        attrs["PixelSpacing"] = ""
    p = _dataset(tmp_path / "aniso.dcm", np.arange(12, dtype=np.uint16).reshape(4, 3), **attrs)
    message = _refused(p)
    assert f"{key} 0.2 x 0.3 mm (row x column) is not square" in message
    assert "resample the image to square pixels" in message
