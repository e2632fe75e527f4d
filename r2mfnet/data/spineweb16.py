"""SpineWeb dataset 16 (Wu et al., MICCAI 2017) as a manifest folder.

The public release holds 481 anterior-posterior (coronal) spinal radiographs (``images/*.jpg``),
one MATLAB file per image (``labels/<image name>.mat``, key ``p2``: 68 x 2 pixel coordinates =
17 vertebrae T1-L5 x 4 corners), and ``angles.csv`` (three Cobb angles per image, in the row
order of ``filenames.csv``).

:func:`prepare_spineweb16` turns each vertebra quadrilateral into a filled polygon, the union of
the 17 polygons into a binary spine mask (PNG), writes the corners as landmarks JSON (TL, TR, BL,
BR per vertebra, top to bottom) and a manifest with ``view=coronal``. Images are not copied: the
manifest points to the originals.

Patients: file names look like ``sunhl-1th-03-Jan-2017-165 A AP.jpg``; the number before the
letter is the patient, the letter (A, B, C, ...) numbers that patient's radiographs, and the
date is when the file was made. A patient's radiographs can carry different dates (``165 A`` on
03-Jan, ``165 B``/``165 C`` on 04-Jan), so the patient id is ``<prefix>-<number>`` without the
date. Files named ``...-coronalN.jpg`` have no patient number and are each their own patient.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from r2mfnet.data.manifest import ViewRecord, write_manifest
from r2mfnet.data.views import LEVELS
from r2mfnet.errors import DataError
from r2mfnet.geometry import order_corners  # re-exported: SpineWeb16 corners are reordered by it

__all__ = [
    "prepare_spineweb16",
    "default_root",
    "patient_id_from_name",
    "read_quadrilaterals",
    "order_corners",
    "order_vertebrae",
    "label_anomalies",
    "mask_from_quads",
]

_FORMAT_VERSION = 1
_PATIENT_RE = re.compile(
    r"^(?P<prefix>.+?)-(?P<date>\d{1,2}-[A-Za-z]{3}-\d{4})-(?P<num>\d+)\s+[A-Za-z]+\s"
)


def default_root() -> Path:
    """``$R2MFNET_SPINEWEB16`` if set, else ``../shared/data/spineweb16`` (relative to the CWD)."""
    env = os.environ.get("R2MFNET_SPINEWEB16")
    return Path(env) if env else Path("..") / "shared" / "data" / "spineweb16"


def patient_id_from_name(stem: str) -> str:
    """Patient id from an image stem: ``sunhl-1th-03-Jan-2017-165 A AP`` -> ``sunhl-1th-165``;
    stems without a patient number (``...-coronal7``) are their own patient."""
    m = _PATIENT_RE.match(stem)
    if m:
        return f"{m.group('prefix')}-{m.group('num')}"
    return stem


def read_quadrilaterals(mat_path: str | os.PathLike) -> np.ndarray:
    """Corners from one label file as float [17, 4, 2] (x, y), in file order."""
    from scipy.io import loadmat

    mat_path = Path(mat_path)
    try:
        mat = loadmat(str(mat_path))
    except Exception as exc:
        raise DataError(f"cannot read the MATLAB label file ({exc})", mat_path) from None
    if "p2" not in mat:
        raise DataError(f"label file has no 'p2' array (keys: {sorted(k for k in mat if not k.startswith('__'))})", mat_path)
    p = np.asarray(mat["p2"], dtype=np.float64)
    if p.shape != (68, 2) or not np.isfinite(p).all():
        raise DataError(f"'p2' must be 68 x 2 finite coordinates, got shape {p.shape}", mat_path)
    return p.reshape(17, 4, 2)


def spine_axes(centres: np.ndarray) -> np.ndarray:
    """Unit downward spine direction at each of N centres (sorted top to bottom), from the
    centres two levels above and below (robust to one duplicated vertebra label)."""
    c = np.asarray(centres, dtype=np.float64)
    n = len(c)
    axes = np.zeros_like(c)
    for i in range(n):
        d = c[min(i + 2, n - 1)] - c[max(i - 2, 0)]
        if d[1] < 0:
            d = -d
        norm = float(np.hypot(*d))
        axes[i] = d / norm if norm > 1e-9 else (0.0, 1.0)
    return axes


def order_vertebrae(quads: np.ndarray) -> np.ndarray:
    """Sort vertebrae top to bottom by centre and reorder each one's corners to TL, TR, BL, BR."""
    q = np.asarray(quads, dtype=np.float64)
    q = q[np.argsort(q.mean(axis=1)[:, 1], kind="stable")]
    axes = spine_axes(q.mean(axis=1))
    return np.stack([order_corners(x, a) for x, a in zip(q, axes)])


def label_anomalies(corners: np.ndarray, shape_hw: tuple[int, int]) -> list[str]:
    """Gross labelling errors that would ruin a mask: a vertebra far larger than the others or
    spanning a large part of the image, or corners outside the image."""
    import cv2

    h, w = shape_hw
    q = np.asarray(corners, dtype=np.float64)
    areas = []
    for quad in q:
        c = quad.mean(axis=0)
        ring = quad[np.argsort(np.arctan2(quad[:, 1] - c[1], quad[:, 0] - c[0]))]
        areas.append(abs(cv2.contourArea(ring.astype(np.float32))))
    areas = np.asarray(areas)
    med = float(np.median(areas)) or 1.0
    problems = []
    for i, quad in enumerate(q):
        if areas[i] > 8.0 * med:
            problems.append(f"vertebra {i + 1} is {areas[i] / med:.0f}x the median vertebra area")
        elif np.ptp(quad[:, 1]) > 0.25 * h:
            problems.append(f"vertebra {i + 1} spans {np.ptp(quad[:, 1]) / h:.0%} of the image height")
    mx, my = 0.05 * w, 0.05 * h
    if (q[..., 0] < -mx).any() or (q[..., 0] > w + mx).any() or (q[..., 1] < -my).any() or (q[..., 1] > h + my).any():
        problems.append("corners lie well outside the image")
    return problems


def mask_from_quads(corners: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Binary mask (bool HxW): union of the filled vertebra quadrilaterals."""
    import cv2

    mask = np.zeros(tuple(shape_hw), dtype=np.uint8)
    for quad in np.asarray(corners, dtype=np.float64):
        c = quad.mean(axis=0)
        ring = quad[np.argsort(np.arctan2(quad[:, 1] - c[1], quad[:, 0] - c[0]))]
        # fixed-point polygon (1/16 px) for sub-pixel-accurate filling
        pts = np.round(ring * 16.0).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _read_angles(root: Path) -> dict[str, list[float]]:
    """``{image file name: [3 Cobb angles]}`` from angles.csv + filenames.csv (if present)."""
    names_f, angles_f = root / "filenames.csv", root / "angles.csv"
    if not (names_f.is_file() and angles_f.is_file()):
        return {}
    try:
        names = [r[0].strip() for r in csv.reader(names_f.read_text(encoding="utf-8-sig").splitlines()) if r]
        angles = [
            [float(v) for v in r]
            for r in csv.reader(angles_f.read_text(encoding="utf-8-sig").splitlines())
            if r
        ]
    except (OSError, ValueError, UnicodeDecodeError):
        warnings.warn(f"SpineWeb16: cannot parse {angles_f} / {names_f}; Cobb angles not stored")
        return {}
    if len(names) != len(angles):
        warnings.warn("SpineWeb16: filenames.csv and angles.csv differ in length; Cobb angles not stored")
        return {}
    return dict(zip(names, angles))


def _image_hw(path: Path) -> tuple[int, int]:
    """Image size from the header when possible (fast), else by decoding."""
    from r2mfnet.data import io as dio

    try:
        data = path.read_bytes()[: 1 << 20]
    except OSError as exc:
        raise DataError(f"cannot read the image ({exc})", path) from None
    if data[:3] == b"\xff\xd8\xff":
        size, _ = dio._jpeg_scan(data)
        if size is not None and size[0] > 0 and size[1] > 0:
            return int(size[0]), int(size[1])
    return dio.read_image(path).shape


def _stamp(root: Path, limit: int | None, names: list[str]) -> dict:
    return {
        "format_version": _FORMAT_VERSION,
        "root": str(root.absolute()),
        "limit": limit,
        "n_images": len(names),
    }


def prepare_spineweb16(
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    limit: int | None = None,
) -> Path:
    """Build (once) the SpineWeb16 manifest folder in ``cache_dir`` and return the manifest path.

    ``root`` defaults to :func:`default_root`; ``cache_dir`` to ``.cache/spineweb16`` (CWD).
    ``limit`` keeps only the first ``limit`` images in name order (for quick tests). The folder
    is generated in a temporary sibling and renamed into place, so an interrupted run leaves no
    half-written cache; an existing cache made from the same root and limit is reused.
    """
    root = Path(root) if root is not None else default_root()
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(".cache") / "spineweb16"
    images_dir, labels_dir = root / "images", root / "labels"
    names = _image_names(root, limit)
    stamp = _stamp(root, limit, names)
    manifest = cache_dir / "manifest.csv"
    if _cache_is_current(cache_dir, stamp):
        return manifest

    unlabelled = [n for n in names if not (labels_dir / (n + ".mat")).is_file()]
    if unlabelled:
        warnings.warn(
            f"SpineWeb16: {len(unlabelled)} image(s) have no label file and are not in the "
            f"manifest: {', '.join(unlabelled[:5])}{' ...' if len(unlabelled) > 5 else ''}"
        )
    angles = _read_angles(root)

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.tmp-", dir=cache_dir.parent))
    try:
        (tmp / "masks").mkdir()
        (tmp / "landmarks").mkdir()
        records = []
        excluded: dict[str, str] = {}
        for name in names:
            if name in unlabelled:
                continue
            converted = _convert_image(images_dir / name, labels_dir / (name + ".mat"), tmp, cache_dir,
                                       angles.get(name))
            if isinstance(converted, str):
                excluded[name] = converted
            else:
                records.append(converted)
        # paths are written relative to the final location
        if excluded:
            warnings.warn(
                f"SpineWeb16: {len(excluded)} image(s) left out because their labels are grossly "
                "wrong (listed with reasons under 'excluded' in "
                f"{cache_dir / 'prepared.json'}): "
                + "; ".join(f"{k}: {v}" for k, v in excluded.items())
            )
        if not records:
            raise DataError("no usable labelled image found", root)
        write_manifest(records, tmp / "manifest.csv", relative_to=cache_dir)
        info = dict(stamp, excluded=excluded, unlabelled=unlabelled, n_records=len(records))
        (tmp / "prepared.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _replace_folder(tmp, cache_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _image_names(root: Path, limit: int | None) -> list[str]:
    """The release's image file names in name order (the first ``limit`` of them), after checking
    that ``root`` looks like the release: a wrong folder fails here with a download hint rather
    than as a missing label file later."""
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise DataError(
            "SpineWeb16 not found: expected the folders 'images/' and 'labels/' inside it. "
            "Download dataset 16 from http://spineweb.digitalimaginggroup.ca/ (Wu et al., MICCAI "
            "2017), unpack it, and pass its folder as root= or set R2MFNET_SPINEWEB16",
            root,
        )
    names = sorted(p.name for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if limit is not None:
        if int(limit) < 1:
            raise DataError(f"limit must be a positive number of images, got {limit}")
        names = names[: int(limit)]
    if not names:
        raise DataError("SpineWeb16 'images/' folder holds no .jpg images", images_dir)
    return names


def _cache_is_current(cache_dir: Path, stamp: dict) -> bool:
    """Whether ``cache_dir`` holds a manifest made from the same root, limit and image count (and
    this format version): then it is reused, and the excluded images are named again, since a
    user who reuses the cache never saw the first warning."""
    manifest, stamp_file = cache_dir / "manifest.csv", cache_dir / "prepared.json"
    if manifest.is_file() and stamp_file.is_file():
        try:
            old = json.loads(stamp_file.read_text(encoding="utf-8"))
            if {k: old.get(k) for k in stamp} == stamp:
                if old.get("excluded"):
                    warnings.warn(
                        f"SpineWeb16: {len(old['excluded'])} image(s) are left out because their "
                        f"labels are grossly wrong; see 'excluded' in {stamp_file}"
                    )
                return True
        except (OSError, ValueError):
            pass
    return False


def _convert_image(img_path: Path, label_path: Path, tmp: Path, cache_dir: Path,
                   angles: list[float] | None) -> ViewRecord | str:
    """One radiograph: its mask PNG and landmarks JSON written under ``tmp``, and its record with
    paths under ``cache_dir`` (where ``tmp`` is renamed to); or, for grossly wrong labels, the
    reason it is left out (a mask from them would teach the model the error)."""
    import cv2

    stem = img_path.stem
    h, w = _image_hw(img_path)
    ordered = order_vertebrae(read_quadrilaterals(label_path))
    bad = label_anomalies(ordered, (h, w))
    if bad:
        return "; ".join(bad)
    mask = mask_from_quads(ordered, (h, w))
    if not mask.any():
        raise DataError("label quadrilaterals give an empty mask (all outside the image?)", label_path)
    mask_rel = Path("masks") / f"{stem}.png"
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:  # pragma: no cover
        raise DataError("cannot encode the mask PNG", tmp / mask_rel)
    buf.tofile(str(tmp / mask_rel))
    lm = {"levels": list(LEVELS), "corners": ordered.round(3).tolist(), "source": str(img_path)}
    if angles is not None:
        lm["cobb_angles_deg"] = angles
        lm["cobb_deg"] = float(max(angles))
    lm_rel = Path("landmarks") / f"{stem}.json"
    (tmp / lm_rel).write_text(json.dumps(lm) + "\n", encoding="utf-8")
    return ViewRecord(
        case_id=stem,
        view="coronal",
        image=img_path.absolute(),
        mask=cache_dir.absolute() / mask_rel,
        quality=None,
        split=None,
        pixel_spacing_mm=None,
        landmarks=cache_dir.absolute() / lm_rel,
        patient_id=patient_id_from_name(stem),
    )


def _replace_folder(tmp: Path, cache_dir: Path) -> None:
    """Rename the finished ``tmp`` to ``cache_dir``; an older cache is first renamed away and then
    deleted, so that a reader never sees a half-replaced folder."""
    if cache_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.old-", dir=cache_dir.parent))
        os.replace(cache_dir, old / "x")
        os.replace(tmp, cache_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, cache_dir)
