"""Image and mask readers: PNG, JPEG, TIFF, BMP (8 and 16 bit) and DICOM.

Every failure a user can cause (a missing, empty, truncated, undecodable, constant, non-finite or
absurdly large file) is raised as :class:`r2mfnet.errors.DataError` naming the file, the problem
and what to do. Nothing else escapes these readers.

The format is recognised from the file's content, not its name (a ``.png`` that is really a JPEG
reads fine). DICOM is recognised by its ``DICM`` magic, or by the suffix ``.dcm``/``.dicom``/
``.ima`` for files written without the 128-byte preamble.

Paths are read with :func:`numpy.fromfile` and decoded in memory with :func:`cv2.imdecode`, so
names with spaces and non-ASCII characters work on every platform.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from r2mfnet.errors import DataError

MAX_IMAGE_SIDE = 20000
"""Largest accepted image side in pixels. Larger files are rejected before decoding (a real
radiograph is at most about 5000 px a side; bigger ones are usually a wrong export)."""

MAX_IMAGE_PIXELS = 200_000_000
"""Largest accepted number of pixels (about 800 MB as float32)."""

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")

__all__ = [
    "ImageData",
    "read_image",
    "read_mask",
    "image_shape",
    "MAX_IMAGE_SIDE",
    "MAX_IMAGE_PIXELS",
]


@dataclass(frozen=True)
class ImageData:
    """A decoded grayscale image.

    ``array`` is float32 HxW holding the raw values (after DICOM rescale slope/intercept and
    MONOCHROME1 inversion; no intensity normalisation). ``bit_depth`` is the stored bit depth
    (8, 16, DICOM ``BitsStored``, or 32 for float TIFFs). ``pixel_spacing_mm`` comes from DICOM
    ``PixelSpacing``/``ImagerPixelSpacing`` and is None for other formats. ``source`` is the path.
    """

    array: np.ndarray
    bit_depth: int
    pixel_spacing_mm: float | None
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.array.shape[0]), int(self.array.shape[1]))


# --------------------------------------------------------------------------------------------
# low-level helpers
# --------------------------------------------------------------------------------------------


def _cv2():
    import cv2

    return cv2


def _read_bytes(path: Path) -> bytes:
    """Read the whole file, turning every OS problem into a DataError."""
    if not path.exists():
        raise DataError(
            "file not found; check the path (paths in a manifest are relative to the CSV)", path
        )
    if path.is_dir():
        raise DataError("is a folder, not an image file; point to the image itself", path)
    try:
        size = path.stat().st_size
    except OSError as exc:  # pragma: no cover - race / permissions
        raise DataError(f"cannot stat the file ({exc}); check permissions", path) from None
    if size == 0:
        raise DataError(
            "zero-byte file (empty); it was probably not copied completely; copy it again", path
        )
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError, MemoryError) as exc:
        raise DataError(f"cannot read the file ({exc}); check permissions", path) from None
    return data.tobytes()


def _sniff(data: bytes, path: Path) -> str:
    """Return the format name recognised from the magic bytes."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:2] == b"BM":
        return "bmp"
    if path.suffix.lower() in DICOM_SUFFIXES:
        return "dicom"
    return "unknown"


def _check_size(h: int, w: int, path: Path) -> None:
    if h <= 0 or w <= 0:
        raise DataError(f"image has an invalid size {w} x {h} px; the file is corrupt", path)
    if h > MAX_IMAGE_SIDE or w > MAX_IMAGE_SIDE or h * w > MAX_IMAGE_PIXELS:
        raise DataError(
            f"image is {w} x {h} px, larger than the limit of {MAX_IMAGE_SIDE} px a side / "
            f"{MAX_IMAGE_PIXELS} pixels; this is almost certainly a wrong export: downsample it "
            "(or raise r2mfnet.data.io.MAX_IMAGE_SIDE / MAX_IMAGE_PIXELS if it is intended)",
            path,
        )


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return h, w


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_scan(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """Walk the JPEG marker segments: return ((h, w) of the first SOF, offset of last SOS)."""
    size = None
    last_sos = -1
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            # inside entropy-coded data after an SOS: search for the next real marker
            j = data.find(b"\xff", i)
            if j < 0:
                break
            i = j
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # stuffing / RST / TEM
            i += 2
            continue
        if marker == 0xD9:  # EOI
            break
        seglen = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF and size is None and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (h, w)
        if marker == 0xDA:
            last_sos = i
        i += 2 + seglen
    return size, last_sos


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first IFD of a classic or big TIFF (None if unparseable)."""
    try:
        bo = "<" if data[:2] == b"II" else ">"
        magic = struct.unpack(bo + "H", data[2:4])[0]
        if magic == 42:
            off = struct.unpack(bo + "I", data[4:8])[0]
            count = struct.unpack(bo + "H", data[off : off + 2])[0]
            entries, esize, base = count, 12, off + 2
        elif magic == 43:
            off = struct.unpack(bo + "Q", data[8:16])[0]
            count = struct.unpack(bo + "Q", data[off : off + 8])[0]
            entries, esize, base = count, 20, off + 8
        else:
            return None
        w = h = None
        for k in range(min(entries, 4096)):
            e = data[base + k * esize : base + (k + 1) * esize]
            if len(e) < esize:
                break
            tag, typ = struct.unpack(bo + "HH", e[:4])
            if tag not in (256, 257):
                continue
            vo = e[8:] if magic == 42 else e[12:]
            if typ == 3:
                val = struct.unpack(bo + "H", vo[:2])[0]
            elif typ == 4:
                val = struct.unpack(bo + "I", vo[:4])[0]
            elif typ == 16:
                val = struct.unpack(bo + "Q", vo[:8])[0]
            else:
                continue
            if tag == 256:
                w = val
            else:
                h = val
        if w is None or h is None:
            return None
        return int(h), int(w)
    except (struct.error, ValueError, IndexError):
        return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    hdr = struct.unpack("<I", data[14:18])[0]
    if hdr == 12:
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return abs(int(h)), abs(int(w))


def _decode_raster(data: bytes, fmt: str, path: Path) -> np.ndarray:
    """Decode PNG/JPEG/TIFF/BMP bytes with OpenCV after header and truncation checks."""
    if fmt == "png":
        size = _png_size(data)
        if size is None:
            raise DataError("corrupt PNG header (no IHDR chunk); re-export the image", path)
        _check_size(*size, path)
        if b"IEND" not in data[-64:]:
            raise DataError(
                "truncated PNG (the end-of-image chunk is missing); the file was cut off during "
                "a copy or download: copy it again",
                path,
            )
    elif fmt == "jpeg":
        size, last_sos = _jpeg_scan(data)
        if size is None or last_sos < 0:
            raise DataError("corrupt JPEG (no frame or scan header); re-export the image", path)
        _check_size(*size, path)
        if data.find(b"\xff\xd9", last_sos) < 0:
            raise DataError(
                "truncated JPEG (the end-of-image marker is missing); the file was cut off "
                "during a copy or download: copy it again",
                path,
            )
    elif fmt == "tiff":
        size = _tiff_size(data)
        if size is None:
            raise DataError("corrupt TIFF header (no image width/height); re-export it", path)
        _check_size(*size, path)
    elif fmt == "bmp":
        size = _bmp_size(data)
        if size is None:
            raise DataError("corrupt BMP header; re-export the image", path)
        _check_size(*size, path)
    cv2 = _cv2()
    try:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception as exc:  # cv2.error and friends
        raise DataError(
            f"cannot decode the {fmt.upper()} image ({str(exc).strip().splitlines()[-1][:200]}); "
            "the file is corrupt or truncated: re-export or copy it again",
            path,
        ) from None
    if arr is None or arr.size == 0:
        raise DataError(
            f"cannot decode the {fmt.upper()} image; the file is corrupt or truncated: re-export "
            "or copy it again",
            path,
        )
    return arr


def _to_gray(arr: np.ndarray, path: Path, how: str = "luma") -> np.ndarray:
    """HxW, HxWx1, HxWx2 (gray+alpha), HxWx3 (BGR) or HxWx4 (BGRA) -> HxW (alpha dropped)."""
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise DataError(
            f"unexpected image layout with {arr.ndim} dimensions {arr.shape}; save a single "
            "2-D grayscale image",
            path,
        )
    c = arr.shape[2]
    if c in (1, 2):
        return arr[:, :, 0]
    if c not in (3, 4):
        raise DataError(f"unexpected number of channels ({c}); save a grayscale image", path)
    colour = arr[:, :, :3]
    if np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(
        colour[:, :, 0], colour[:, :, 2]
    ):
        return colour[:, :, 0]
    if how == "max":
        return colour.max(axis=2)
    # ITU-R BT.601 luma on BGR, computed in float so 16-bit precision is kept
    return colour.astype(np.float32) @ np.asarray([0.114, 0.587, 0.299], dtype=np.float32)


def _bit_depth(dtype: np.dtype) -> int:
    return int(np.dtype(dtype).itemsize * 8)


def _dicom_read(data: bytes, path: Path, apply_window: bool) -> ImageData:
    import warnings

    # pydicom warns about every non-conformant header value; what matters is whether the pixels
    # can be read, which is reported as a DataError below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _dicom_read_quiet(data, path, apply_window)


ANISOTROPY_TOLERANCE = 0.01
"""Largest relative difference between the row and column spacing read as square pixels (1 %:
below what HD95, ASSD or a Cobb angle resolve). Beyond it the file is refused: the letterbox
resize, the Cobb angles (measured in pixel geometry) and the one-number mm spacing of the
metrics and measurements all assume square pixels, so an averaged spacing would silently make
every distance and angle approximate."""


def _dicom_read_quiet(data: bytes, path: Path, apply_window: bool) -> ImageData:
    """The DICOM decoder, step by step; any surprise in a header is one :class:`DataError` line."""
    ds = _dicom_parse(data, path)
    try:
        raw = _dicom_colour_to_bgr(_dicom_pixels(ds, path), ds)
        arr, lo, hi, bits_stored = _dicom_values(raw, ds, path)
        if apply_window:
            arr, lo, hi = _dicom_window(arr, lo, hi, ds)
        if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper() == "MONOCHROME1":
            arr = (lo + hi) - arr  # high values were dark: flip so bone is bright
        return ImageData(
            array=np.ascontiguousarray(arr, dtype=np.float32),
            bit_depth=bits_stored,
            pixel_spacing_mm=_dicom_spacing(ds, path),
            source=str(path),
        )
    except DataError:
        raise
    except Exception as exc:  # any other malformed-header surprise
        raise DataError(
            f"malformed DICOM file ({type(exc).__name__}: {_one_line(exc)}); export it again",
            path,
        ) from None


def _dicom_parse(data: bytes, path: Path):
    """The pydicom dataset of ``data`` (``force=True``: files without the preamble too)."""
    try:
        import pydicom
    except ImportError:  # pragma: no cover - pydicom is a dependency
        raise DataError(
            "this is a DICOM file but pydicom is not installed; `pip install pydicom`", path
        ) from None
    import io as _io

    try:
        return pydicom.dcmread(_io.BytesIO(data), force=True)
    except Exception as exc:
        raise DataError(
            f"cannot parse the DICOM file ({type(exc).__name__}: {_one_line(exc)}); the file is "
            "corrupt or truncated: export it again",
            path,
        ) from None


def _dicom_pixels(ds, path: Path) -> np.ndarray:
    """The stored pixel array of a single-frame image: no pixel data, a multi-frame file and a
    transfer syntax no installed decoder reads are each refused with their own reason."""
    if "PixelData" not in ds:
        raise DataError(
            "DICOM file has no pixel data (is it a report or structured document?); "
            "export the image series",
            path,
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    _check_size(rows, cols, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise DataError(
            f"multi-frame DICOM ({frames} frames) is not supported; export one frame per file",
            path,
        )
    try:
        raw = ds.pixel_array
    except Exception as exc:
        tsuid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DataError(
            f"cannot decode the DICOM pixel data (transfer syntax {tsuid}: "
            f"{type(exc).__name__}: {_one_line(exc)}); the file is truncated, or it is "
            "compressed and needs `pip install pylibjpeg pylibjpeg-libjpeg "
            "pylibjpeg-openjpeg` (or gdcm), or decompress it with `gdcmconv --raw`",
            path,
        ) from None
    raw = np.asarray(raw)
    if raw.ndim != 2 and not (raw.ndim == 3 and raw.shape[2] in (3, 4)):
        raise DataError(f"unexpected DICOM pixel array shape {raw.shape}", path)
    return raw


def _dicom_colour_to_bgr(raw: np.ndarray, ds) -> np.ndarray:
    """A colour image (RGB, or YBR converted to RGB) in OpenCV's BGR order for :func:`_to_gray`.

    pydicom 3's ``pixel_array`` already returns YBR images as RGB (its ``as_rgb`` default), so
    only pydicom 2's arrays are converted here; converting twice scrambles the grey values."""
    import pydicom

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if raw.ndim != 3 or photometric in ("MONOCHROME1", "MONOCHROME2"):
        return raw
    if photometric.startswith("YBR") and int(pydicom.__version__.split(".")[0]) < 3:  # pragma: no cover
        from pydicom.pixel_data_handlers.util import convert_color_space

        raw = convert_color_space(raw, photometric, "RGB")
    return raw[..., ::-1]


def _one_line(exc: BaseException) -> str:
    """A library's error text on one line, at most 200 characters (pydicom's span several)."""
    return " ".join(str(exc).split())[:200]


def _dicom_values(raw: np.ndarray, ds, path: Path) -> tuple[np.ndarray, float, float, int]:
    """Grey values after the modality LUT (rescale slope / intercept), the range the stored bits
    can hold after the same rescale (signed when ``PixelRepresentation`` is 1), and ``BitsStored``."""
    bits_stored = int(ds.get("BitsStored", 0) or _bit_depth(raw.dtype))
    if raw.ndim == 3:
        arr = _to_gray(raw, path).astype(np.float64)
        lo_raw, hi_raw = 0.0, float(2**bits_stored - 1)
    elif int(ds.get("PixelRepresentation", 0) or 0) == 1:
        arr = raw.astype(np.float64)
        lo_raw, hi_raw = -float(2 ** (bits_stored - 1)), float(2 ** (bits_stored - 1) - 1)
    else:
        arr = raw.astype(np.float64)
        lo_raw, hi_raw = 0.0, float(2**bits_stored - 1)
    slope = ds.get("RescaleSlope", None)
    intercept = ds.get("RescaleIntercept", None)
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    if not np.isfinite(slope) or not np.isfinite(intercept) or slope == 0:
        raise DataError(
            f"invalid RescaleSlope/RescaleIntercept ({slope}, {intercept}); fix the header", path
        )
    lo, hi = sorted((lo_raw * slope + intercept, hi_raw * slope + intercept))
    return arr * slope + intercept, lo, hi, bits_stored


def _dicom_window(arr: np.ndarray, lo: float, hi: float, ds) -> tuple[np.ndarray, float, float]:
    """The first VOI window (``WindowCenter`` / ``WindowWidth``) applied as a clip, if valid."""
    center, width = ds.get("WindowCenter", None), ds.get("WindowWidth", None)
    if center is None or width is None:
        return arr, lo, hi
    center = float(center[0] if _is_multi(center) else center)
    width = float(width[0] if _is_multi(width) else width)
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        return arr, lo, hi
    lo, hi = center - width / 2.0, center + width / 2.0
    return np.clip(arr, lo, hi), lo, hi


def _dicom_spacing(ds, path: Path) -> float | None:
    """The pixel spacing in mm from ``PixelSpacing`` (else ``ImagerPixelSpacing``), ``None`` when
    neither holds a positive number. Non-square pixels (row and column spacing differing by more
    than :data:`ANISOTROPY_TOLERANCE`) are refused: see there why."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key, None)
        if value is None or value == "":
            continue
        vals = [float(v) for v in (value if _is_multi(value) else [value])]
        vals = [v for v in vals if np.isfinite(v) and v > 0]
        if not vals:
            continue
        if max(vals) - min(vals) > ANISOTROPY_TOLERANCE * min(vals):
            raise DataError(
                f"{key} {vals[0]:g} x {vals[-1]:g} mm (row x column) is not square; r2mfnet's "
                "resizing, Cobb angles and mm metrics assume square pixels: resample the image "
                "to square pixels and export it again",
                path,
            )
        return float(np.mean(vals))
    return None


def _is_multi(value) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _read_raw(path: str | os.PathLike, apply_window: bool = False) -> tuple[np.ndarray, int, float | None, str]:
    """Decode any supported file into (array HxW, bit_depth, spacing, format)."""
    path = Path(path)
    data = _read_bytes(path)
    fmt = _sniff(data, path)
    if fmt == "unknown":
        raise DataError(
            "unsupported or unrecognised image format (expected PNG, JPEG, TIFF, BMP or DICOM); "
            "if it is a DICOM file without a preamble, give it the suffix .dcm; otherwise "
            "convert it to PNG",
            path,
        )
    if fmt == "dicom":
        img = _dicom_read(data, path, apply_window)
        return img.array, img.bit_depth, img.pixel_spacing_mm, fmt
    arr = _decode_raster(data, fmt, path)
    return arr, _bit_depth(arr.dtype), None, fmt


# --------------------------------------------------------------------------------------------
# public readers
# --------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike, apply_window: bool = False) -> ImageData:
    """Read a radiograph as float32 grayscale.

    PNG/JPEG/TIFF/BMP at 8 or 16 bit (colour is converted to gray, alpha is dropped) and DICOM
    (rescale slope/intercept, MONOCHROME1 inverted so bone is bright; with ``apply_window=True``
    the first VOI window ``WindowCenter``/``WindowWidth`` is applied as a clip).

    Raises :class:`DataError` for a missing, zero-byte, truncated, undecodable, non-finite,
    constant or absurdly large file.
    """
    path = Path(path)
    arr, bit_depth, spacing, _fmt = _read_raw(path, apply_window)
    gray = _to_gray(arr, path)
    _check_size(int(gray.shape[0]), int(gray.shape[1]), path)
    out = np.ascontiguousarray(gray, dtype=np.float32)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise DataError(
            f"image contains {bad} NaN or infinite pixel value(s); fix the export (float TIFFs "
            "must be finite)",
            path,
        )
    vmin, vmax = float(out.min()), float(out.max())
    if vmin == vmax:
        raise DataError(
            f"constant image (every pixel is {vmin:g}); it holds no picture: check the export "
            "or the windowing",
            path,
        )
    return ImageData(array=out, bit_depth=int(bit_depth), pixel_spacing_mm=spacing, source=str(path))


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask as a bool HxW array (True = spine).

    Accepted: exactly the two levels {0, v} for any single v > 0 (typically {0, 1}, {0, 255} or
    {0, 65535}), or a single level (an all-background mask reads as all False; rejecting empty
    masks is the manifest validator's job). Colour masks are reduced by their channel maximum,
    alpha is dropped. Anything else raises :class:`DataError` ``non-binary mask (values ...)``.
    """
    path = Path(path)
    arr, _bits, _spacing, fmt = _read_raw(path)
    gray = _to_gray(arr, path, how="max")
    if not np.isfinite(gray).all():
        raise DataError("mask contains NaN or infinite values; save it as an 8-bit PNG", path)
    values = np.unique(gray)
    if values.size > 2 or (values.size == 2 and values[0] != 0) or (values.size == 1 and values[0] < 0):
        shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if values.size > 8 else "")
        hint = (
            " (JPEG compression blurs mask edges: save masks as PNG)" if fmt == "jpeg" else ""
        )
        raise DataError(
            f"non-binary mask (values {shown}; {values.size} distinct levels); a mask must hold "
            f"exactly two levels, 0 for background and one value such as 1 or 255 for the "
            f"spine{hint}",
            path,
        )
    return np.ascontiguousarray(gray > 0)


def image_shape(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image, decoding it (so corrupt files are detected)."""
    return read_image(path).shape
