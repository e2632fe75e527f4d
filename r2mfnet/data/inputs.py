"""What to predict: cases from one image, a folder of images, or a manifest CSV.

* **Manifest** (``*.csv``, the format of ``docs/data.md``; the ``mask`` column may be empty): rows
  are grouped by ``case_id``; each case's views are predicted and measured together, so a case
  with a coronal and bending views gets the flexibility of each curve.
* **Image or folder**: every image is its own case (case id = file name without suffix). The view
  is not known, so it is taken from the **file name** (:func:`view_from_filename`): a name
  containing ``left`` and ``bend`` (e.g. ``P01_left-bending.png``, ``left bend.dcm``) is a
  left-bending view, ``right`` and ``bend`` a right-bending view, anything else is treated as
  **coronal** (the standing antero-posterior view); the rule applied is recorded per view. Folders
  are read non-recursively; files with an image suffix (:data:`IMAGE_SUFFIXES`) or no suffix at
  all (DICOM exports often have none) are inputs, other files and hidden files are ignored (and
  returned, so that the caller can list them).

Nothing is read here beyond the manifest and the folder listing: an unreadable image is found
later, one by one, so that one bad file does not stop the others.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from r2mfnet.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".ima")
VIEW_RULE = ("view from the file name: 'left' and 'bend' -> left_bending, 'right' and 'bend' -> "
             "right_bending, otherwise coronal")

_LEFT = re.compile(r"left", re.IGNORECASE)
_RIGHT = re.compile(r"right", re.IGNORECASE)
_BEND = re.compile(r"bend", re.IGNORECASE)


@dataclass(frozen=True)
class InputView:
    """One radiograph to predict: its view, file, and how the view was decided."""

    view: str
    path: Path
    view_from: str  # "manifest", "file name" or "default (coronal)"
    pixel_spacing_mm: float | None = None
    mask: Path | None = None  # the manifest's mask, used with masks="manifest"


@dataclass(frozen=True)
class InputCase:
    """The views of one case (a manifest case, or a single image)."""

    case_id: str
    views: dict[str, InputView]


def view_from_filename(name: str) -> tuple[str, str]:
    """``(view, rule)`` for an image whose view is not given (see the module docstring)."""
    stem = Path(name).stem
    if _BEND.search(stem):
        left, right = bool(_LEFT.search(stem)), bool(_RIGHT.search(stem))
        if left and not right:
            return "left_bending", "file name"
        if right and not left:
            return "right_bending", "file name"
    return "coronal", "default (coronal)"


def _is_image_candidate(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and (
        p.suffix.lower() in IMAGE_SUFFIXES or p.suffix == "")


def collect_inputs(input_path: str | Path, masks: str = "predicted"
                   ) -> tuple[list[InputCase], list[str], str]:
    """Cases to process from a file, folder or manifest: ``(cases, ignored files, kind)``.

    ``kind`` is ``"manifest"``, ``"folder"`` or ``"image"``. ``masks="manifest"`` (measure a
    manifest's own masks) requires a manifest with masks. A missing input, an empty folder or a
    malformed manifest raises :class:`DataError` (nothing can be done).
    """
    p = Path(input_path)
    if not p.exists():
        raise DataError("input does not exist: give an image, a folder of images or a manifest "
                        "CSV", path=p)
    if p.is_file() and p.suffix.lower() == ".csv":
        from r2mfnet.data.manifest import load_manifest, records_by_case

        records = load_manifest(p, require_masks=(masks == "manifest"), check_images=False)
        cases = []
        for cid, views in records_by_case(records).items():
            cases.append(InputCase(cid, {
                v: InputView(v, r.image, "manifest", r.pixel_spacing_mm, r.mask)
                for v, r in views.items()}))
        return cases, [], "manifest"
    if masks == "manifest":
        raise ConfigError("masks=manifest measures a manifest's own masks: give input=<manifest.csv>")
    if p.is_dir():
        files = sorted(x for x in p.iterdir() if x.is_file())
        inputs = [x for x in files if _is_image_candidate(x)]
        ignored = [x.name for x in files if x not in inputs]
        if not inputs:
            raise DataError(f"the folder holds no image files (suffixes {', '.join(IMAGE_SUFFIXES)}"
                            " or none)", path=p)
        kind = "folder"
    else:
        inputs, ignored, kind = [p], [], "image"
    cases = []
    for f in inputs:
        view, rule = view_from_filename(f.name)
        cases.append(InputCase(f.stem, {view: InputView(view, f, rule)}))
    return cases, ignored, kind
