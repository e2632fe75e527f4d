"""The manifest: one CSV that describes a dataset, one row per radiograph (view).

Columns (header names are case-insensitive, order is free):

=================  ========  ===============================================================
column             required  meaning
=================  ========  ===============================================================
case_id            yes       one patient work-up; its views share the id
view               yes       ``coronal``, ``left_bending`` or ``right_bending``
image              yes       image path (PNG/JPEG/TIFF/BMP/DICOM), relative to the CSV
mask               yes [1]_  binary mask path, same size as the image
quality            no        ``high``, ``medium``, ``low`` or empty
split              no        ``train``, ``val``, ``test`` or empty (then assigned by patient)
pixel_spacing_mm   no        positive number, or empty
landmarks          no        landmarks JSON path (see docs/data.md), or empty
patient_id         no        groups cases of one patient for splitting; defaults to case_id
=================  ========  ===============================================================

.. [1] with ``require_masks=False`` the column may be missing and cells may be empty.

:func:`load_manifest` validates every row and raises one :class:`ManifestError` that lists every
problem (row numbers as a spreadsheet shows them: the header is line 1). Nothing is silently
dropped.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from r2mfnet.atomic import atomic_write_text
from r2mfnet.data.views import QUALITIES, VIEWS
from r2mfnet.errors import DataError, ManifestError

SPLITS: tuple[str, ...] = ("train", "val", "test")
REQUIRED_COLUMNS: tuple[str, ...] = ("case_id", "view", "image", "mask")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "quality",
    "split",
    "pixel_spacing_mm",
    "landmarks",
    "patient_id",
)
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

__all__ = [
    "ViewRecord",
    "load_manifest",
    "write_manifest",
    "SPLITS",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
]


@dataclass(frozen=True)
class ViewRecord:
    """One radiograph of one case. Paths are absolute (resolved against the manifest folder)."""

    case_id: str
    view: str
    image: Path
    mask: Path | None = None
    quality: str | None = None
    split: str | None = None
    pixel_spacing_mm: float | None = None
    landmarks: Path | None = None
    patient_id: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "case_id", str(self.case_id))
        object.__setattr__(self, "image", Path(self.image))
        if self.mask is not None:
            object.__setattr__(self, "mask", Path(self.mask))
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", Path(self.landmarks))
        if self.pixel_spacing_mm is not None:
            object.__setattr__(self, "pixel_spacing_mm", float(self.pixel_spacing_mm))
        if not self.patient_id:
            object.__setattr__(self, "patient_id", self.case_id)
        if self.view not in VIEWS:
            raise DataError(
                f"unknown view '{self.view}' for case '{self.case_id}'; allowed: {', '.join(VIEWS)}"
            )

    @property
    def key(self) -> tuple[str, str]:
        """(case_id, view): unique within a manifest."""
        return (self.case_id, self.view)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _normalise_view(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    if not p.is_absolute():
        p = base / p
    if not p.exists() and "\\" in value:
        # a manifest written on Windows
        alt = Path(value.replace("\\", "/"))
        alt = alt if alt.is_absolute() else base / alt
        if alt.exists():
            p = alt
    return Path(os.path.normpath(str(p)))


def _read_csv_text(csv_path: Path) -> str:
    if not csv_path.exists():
        raise ManifestError(csv_path, ["manifest file not found; check the path"])
    if csv_path.is_dir():
        raise ManifestError(csv_path, ["is a folder; give the path of the manifest CSV file"])
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        raise ManifestError(csv_path, [f"cannot read the manifest ({exc})"]) from None
    if not raw.strip():
        raise ManifestError(
            csv_path, ["manifest is empty; it needs a header line and one row per view"]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError(
            csv_path,
            [
                f"line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                f"{exc.start}); save the CSV as UTF-8 ('CSV UTF-8' in Excel)"
            ],
        ) from None


def _check_landmarks(path: Path) -> str | None:
    """Return a problem description, or None if the landmarks JSON is usable."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"landmarks file '{path}' is not valid JSON ({str(exc)[:120]})"
    corners = obj.get("corners") if isinstance(obj, dict) else None
    if not isinstance(corners, list) or not corners:
        return f"landmarks file '{path}' has no 'corners' list"
    try:
        import numpy as np

        arr = np.asarray(corners, dtype=float)
    except (TypeError, ValueError):
        return f"landmarks file '{path}': 'corners' is not a numeric [N][4][2] array"
    if arr.ndim != 3 or arr.shape[1:] != (4, 2) or not np.isfinite(arr).all():
        return (
            f"landmarks file '{path}': 'corners' must be [N][4][2] finite numbers, got shape "
            f"{tuple(arr.shape)}"
        )
    return None


def load_manifest(
    csv_path: str | os.PathLike,
    require_masks: bool = True,
    check_images: bool = True,
) -> list[ViewRecord]:
    """Load and validate a manifest CSV; return one :class:`ViewRecord` per row, in file order.

    Every row is checked (required cells, allowed values, files exist; with ``check_images`` the
    image and mask are decoded, so truncated files, non-binary or empty masks and size mismatches
    are found now rather than hours into training). All problems are collected and raised
    together as one :class:`ManifestError`.
    """
    csv_path = Path(csv_path)
    text = _read_csv_text(csv_path)
    base = csv_path.parent.absolute()
    header, data_rows = _read_header(csv_path, _parse_rows(csv_path, text), require_masks)
    problems: list[str] = []
    records: list[ViewRecord] = []
    seen = _SeenRows()
    for line, cells in data_rows:
        if len(cells) != len(header):
            problems.append(
                f"row {line}: has {len(cells)} cell(s) but the header has {len(header)} "
                "column(s); check for stray or missing commas (quote cells containing commas)"
            )
            continue
        cell = {h: v.strip() for h, v in zip(header, cells)}
        label = f"row {line}" + (f" (case '{cell.get('case_id', '')}')" if cell.get("case_id", "") else "")
        errs, record = _check_row(line, cell, base, require_masks, check_images, seen)
        problems.extend(f"{label}: {e}" for e in errs)
        if record is not None:
            records.append(record)
    problems.extend(_split_leaks(seen.patient_splits))
    if problems:
        raise ManifestError(csv_path, problems)
    return records


def _parse_rows(csv_path: Path, text: str) -> list[tuple[int, list[str]]]:
    """``(first line number, cells)`` of every CSV record: a quoted cell may span lines, and the
    messages name the line a spreadsheet shows the record on."""
    try:
        rows_iter = csv.reader(io.StringIO(text, newline=""))
        parsed: list[tuple[int, list[str]]] = []
        line_after = 0
        for cells in rows_iter:
            start = line_after + 1
            line_after = rows_iter.line_num
            parsed.append((start, cells))
    except csv.Error as exc:
        raise ManifestError(
            csv_path, [f"line {rows_iter.line_num}: the CSV cannot be parsed ({exc})"]
        ) from None
    return parsed


def _read_header(
    csv_path: Path, parsed: list[tuple[int, list[str]]], require_masks: bool
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (first non-blank line, names lower-cased) and the non-blank data rows.

    Header problems are raised on their own, before any row is looked at: with a wrong or
    missing column every row would repeat the same complaint.
    """
    parsed = list(parsed)
    while parsed and not any(c.strip() for c in parsed[0][1]):
        parsed.pop(0)
    if not parsed:
        raise ManifestError(csv_path, ["manifest has no header line"])
    header_line, header_cells = parsed[0]
    header = [c.strip().lower() for c in header_cells]
    problems: list[str] = []
    hint = ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint = " (the file looks semicolon- or tab-separated; save it comma-separated)"
    required = REQUIRED_COLUMNS if require_masks else tuple(c for c in REQUIRED_COLUMNS if c != "mask")
    missing = [c for c in required if c not in header]
    if missing:
        problems.append(
            f"line {header_line} (header): missing required column(s) {', '.join(missing)}; "
            f"the header must contain {', '.join(required)}{hint}"
        )
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        problems.append(
            f"line {header_line} (header): unknown column(s) "
            f"{', '.join(repr(c) for c in unknown)}; allowed columns: {', '.join(COLUMNS)}"
        )
    dup_cols = sorted({c for c in header if header.count(c) > 1 and c})
    if dup_cols:
        problems.append(
            f"line {header_line} (header): column(s) {', '.join(dup_cols)} appear more than once"
        )
    if problems:
        raise ManifestError(csv_path, problems)
    data_rows = [(n, cells) for n, cells in parsed[1:] if any(c.strip() for c in cells)]
    if not data_rows:
        raise ManifestError(csv_path, ["manifest has a header but no rows"])
    return header, data_rows


@dataclass
class _SeenRows:
    """What the rows before the current one used: the checks across rows (duplicate views,
    a radiograph used twice, a case with two patients, a patient in two splits) need it."""

    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    images: dict[Path, int] = field(default_factory=dict)
    case_patient: dict[str, tuple[str, int]] = field(default_factory=dict)
    patient_splits: dict[str, dict[str, list[int]]] = field(default_factory=dict)


@dataclass
class _RowFiles:
    """A row's resolved paths; ``*_ok`` = the file exists (only those are decoded and compared)."""

    image: Path | None = None
    image_ok: bool = False
    mask: Path | None = None
    mask_ok: bool = False
    landmarks: Path | None = None


def _check_row(
    line: int, cell: dict[str, str], base: Path, require_masks: bool, check_images: bool,
    seen: _SeenRows,
) -> tuple[list[str], ViewRecord | None]:
    """One data row's problems (in the order: cells, files, decoded content, other rows) and its
    record, ``None`` when it has a problem: a bad row is reported, never half-loaded."""
    errs: list[str] = []
    case_id = cell.get("case_id", "")
    view, quality, split, spacing = _check_cells(cell, errs)
    patient_id = cell.get("patient_id", "") or case_id
    files = _check_files(cell, base, require_masks, errs)
    if check_images:
        _check_decoded(files, errs)
    _check_across_rows(seen, line, case_id, view, patient_id, split, files, cell.get("image", ""), errs)
    if errs:
        return errs, None
    return errs, ViewRecord(
        case_id=case_id,
        view=view,
        image=files.image,
        mask=files.mask,
        quality=quality,
        split=split,
        pixel_spacing_mm=spacing,
        landmarks=files.landmarks,
        patient_id=patient_id,
    )


def _check_cells(
    cell: dict[str, str], errs: list[str]
) -> tuple[str, str | None, str | None, float | None]:
    """``(view, quality, split, pixel spacing)`` of a row, normalised (case, ``-`` and spaces in
    view names are forgiven, as spreadsheets are typed by hand); problems go to ``errs``."""
    if not cell.get("case_id", ""):
        errs.append("empty case_id")
    view_raw = cell.get("view", "")
    view = _normalise_view(view_raw)
    if not view_raw:
        errs.append(f"empty view; allowed: {', '.join(VIEWS)}")
    elif view not in VIEWS:
        errs.append(f"unknown view '{view_raw}'; allowed: {', '.join(VIEWS)}")
    quality = cell.get("quality", "").lower() or None
    if quality is not None and quality not in QUALITIES:
        errs.append(
            f"unknown quality '{cell['quality']}'; allowed: {', '.join(QUALITIES)} or empty"
        )
    split = cell.get("split", "").lower() or None
    if split is not None and split not in SPLITS:
        errs.append(f"bad split '{cell['split']}'; allowed: {', '.join(SPLITS)} or empty")
    spacing: float | None = None
    sp_raw = cell.get("pixel_spacing_mm", "")
    if sp_raw:
        try:
            spacing = float(sp_raw)
        except ValueError:
            spacing = float("nan")
        if not (math.isfinite(spacing) and spacing > 0):
            errs.append(f"bad pixel_spacing_mm '{sp_raw}'; give a positive number or leave empty")
            spacing = None
    return view, quality, split, spacing


def _check_files(cell: dict[str, str], base: Path, require_masks: bool, errs: list[str]) -> _RowFiles:
    """Resolve the image, mask and landmarks paths against the manifest's folder and check that
    they exist (the landmarks JSON is parsed too: it is small, and a bad one would fail late)."""
    files = _RowFiles()
    img_raw = cell.get("image", "")
    if not img_raw:
        errs.append("empty image path")
    else:
        files.image = _resolve(base, img_raw)
        if not files.image.is_file():
            errs.append(
                f"image file not found: '{img_raw}' (looked for '{files.image}'; paths are "
                "relative to the manifest's folder)"
            )
        else:
            files.image_ok = True
    mask_raw = cell.get("mask", "")
    if not mask_raw:
        if require_masks:
            errs.append("empty mask path (masks are required for training and evaluation)")
    else:
        files.mask = _resolve(base, mask_raw)
        if not files.mask.is_file():
            errs.append(
                f"mask file not found: '{mask_raw}' (looked for '{files.mask}')"
            )
        else:
            files.mask_ok = True
    lm_raw = cell.get("landmarks", "")
    if lm_raw:
        files.landmarks = _resolve(base, lm_raw)
        if not files.landmarks.is_file():
            errs.append(f"landmarks file not found: '{lm_raw}' (looked for '{files.landmarks}')")
        else:
            msg = _check_landmarks(files.landmarks)
            if msg:
                errs.append(msg)
    return files


def _check_decoded(files: _RowFiles, errs: list[str]) -> None:
    """Decode the existing image and mask: truncated files, non-binary or empty masks and a mask
    of another size than its image are found now, not hours into training."""
    from r2mfnet.data import io as dio

    image_hw = None
    if files.image is not None and files.image_ok:
        try:
            image_hw = dio.read_image(files.image).shape
        except DataError as exc:
            errs.append(f"unreadable image: {exc}")
    if files.mask is not None and files.mask_ok:
        try:
            mask = dio.read_mask(files.mask)
        except DataError as exc:
            errs.append(f"bad mask: {exc}")
        else:
            if image_hw is not None and tuple(mask.shape) != tuple(image_hw):
                errs.append(
                    f"mask size {mask.shape[1]} x {mask.shape[0]} px differs from image size "
                    f"{image_hw[1]} x {image_hw[0]} px (width x height); masks must match "
                    "their image pixel for pixel"
                )
            if not mask.any():
                errs.append(
                    f"empty mask (no foreground pixel) in '{files.mask}'; every view needs "
                    "the spine labelled"
                )
            del mask


def _check_across_rows(
    seen: _SeenRows, line: int, case_id: str, view: str, patient_id: str, split: str | None,
    files: _RowFiles, img_raw: str, errs: list[str],
) -> None:
    """Checks against the earlier rows, and record this row for the later ones: one view per
    (case, view), one row per radiograph, one patient per case; the splits are gathered for
    :func:`_split_leaks`. Rows with other problems still take part, so that every clash is named."""
    if case_id and view in VIEWS:
        key = (case_id, view)
        if key in seen.keys:
            errs.append(
                f"duplicate (case_id '{case_id}', view '{view}'), first seen at row "
                f"{seen.keys[key]}"
            )
        else:
            seen.keys[key] = line
    if files.image is not None and files.image_ok:
        if files.image in seen.images:
            errs.append(
                f"image '{img_raw}' is also used by row {seen.images[files.image]}; every "
                "view needs its own radiograph"
            )
        else:
            seen.images[files.image] = line
    if case_id:
        if case_id in seen.case_patient and seen.case_patient[case_id][0] != patient_id:
            errs.append(
                f"patient_id '{patient_id}' differs from '{seen.case_patient[case_id][0]}' given "
                f"for the same case at row {seen.case_patient[case_id][1]}"
            )
        seen.case_patient.setdefault(case_id, (patient_id, line))
        if split is not None:
            seen.patient_splits.setdefault(patient_id, {}).setdefault(split, []).append(line)


def _split_leaks(patient_splits: dict[str, dict[str, list[int]]]) -> list[str]:
    """One problem per patient whose rows name more than one split: a patient on both sides of
    the train/test line makes the evaluation optimistic."""
    problems = []
    for patient, splits in patient_splits.items():
        if len(splits) > 1:
            where = "; ".join(
                f"{s} (row{'s' if len(r) > 1 else ''} {', '.join(map(str, r))})"
                for s, r in splits.items()
            )
            problems.append(
                f"patient '{patient}' is in more than one split: {where}; all views and cases of "
                "one patient must share a split, or the evaluation leaks"
            )
    return problems


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _rel(path: Path | None, base: Path) -> str:
    if path is None:
        return ""
    p = Path(path)
    if not p.is_absolute():
        p = Path.cwd() / p
    try:
        return Path(os.path.relpath(os.path.normpath(str(p)), str(base))).as_posix()
    except ValueError:  # different drive on Windows
        return p.as_posix()


def write_manifest(
    records: Iterable[ViewRecord],
    csv_path: str | os.PathLike,
    relative_to: str | os.PathLike | None = None,
    *,
    explicit_patient_id: bool = False,
) -> Path:
    """Write ``records`` as a manifest CSV (atomically; paths relative to the CSV's folder).

    Relative paths inside records are taken relative to the current working directory.
    ``relative_to`` writes paths relative to another folder instead (for a manifest built in a
    temporary folder that is renamed into place afterwards). ``patient_id`` is left empty where
    it equals ``case_id`` (the loader's default) unless ``explicit_patient_id``: the synthetic
    generator's manifests have always spelled it out, and keeping them byte-identical keeps every
    cached data set and its hash valid. Every manifest writer goes through here, so one format
    (columns, quoting, number spelling) serves all data sets.
    """
    csv_path = Path(csv_path)
    base = Path(relative_to).absolute() if relative_to is not None else csv_path.parent.absolute()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        if not isinstance(r, ViewRecord):
            raise DataError(f"write_manifest expects ViewRecord objects, got {type(r).__name__}")
        writer.writerow(
            [
                r.case_id,
                r.view,
                _rel(r.image, base),
                _rel(r.mask, base),
                r.quality or "",
                r.split or "",
                "" if r.pixel_spacing_mm is None else repr(float(r.pixel_spacing_mm)),
                _rel(r.landmarks, base),
                r.patient_id if explicit_patient_id or r.patient_id != r.case_id else "",
            ]
        )
    return atomic_write_text(csv_path, buf.getvalue())


def records_by_case(records: Sequence[ViewRecord]) -> dict[str, dict[str, ViewRecord]]:
    """Group records as ``{case_id: {view: record}}`` (file order kept)."""
    out: dict[str, dict[str, ViewRecord]] = {}
    for r in records:
        out.setdefault(r.case_id, {})[r.view] = r
    return out
