"""What ``r2mfnet-predict`` writes: one folder per case and the run's summary.

Output (``output_dir``), one folder per case (its id, made safe for a file name)::

    <case>/<view>_mask.png       binary mask at the image's original size (0/255)
    <case>/<view>_overlay.png    the image with the mask tinted red and outlined
    <case>/<view>_seg.dcm        DICOM inputs: the mask as a DICOM Segmentation (apps/predict_dicom)
    <case>/measurements.json     angles per view, flexibility, errors (schema: docs/clinical.md)
    <case>/report.png            the views side by side: outline, centreline, end plates, numbers
    summary.json, summary.csv    every case and view: status and main angles; failed inputs
    index.html                   the review page: every case, doubtful first (measure/review_page)

An input that cannot be read (missing, truncated, not an image) is reported (listed in
``summary.json`` and in its case's ``measurements.json``) and skipped; the rest is processed and
the run's :attr:`PredictSummary.exit_code` is then 1. A mask that cannot be measured (empty,
broken) is a result, not a failure: its view has ``"measured": false`` and the reason. Every
file is written atomically. The measuring itself is :mod:`r2mfnet.measure.case`; where the masks
come from (a predictor, a manifest) is the caller's ``get_mask``.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from r2mfnet.atomic import atomic_write_json, atomic_write_text
from r2mfnet.data.inputs import InputCase, InputView
from r2mfnet.errors import DataError, MeasurementError, R2MFNetError
from r2mfnet.measure.review_page import write_review_page
from r2mfnet.pictures import overlay, write_png

if TYPE_CHECKING:  # only for the type hints: the refiner is loaded by the apps
    from r2mfnet.inference.corner_refiner import CornerRefiner

SCHEMA = "r2mfnet-measurements/1"
EXIT_OK = 0
EXIT_SOME_FAILED = 1
"""Some inputs could not be read; the others were processed (2 is a run that could not start)."""

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@dataclass
class PredictSummary:
    """What a run did: cases written, inputs that failed, files ignored in a folder."""

    output_dir: Path
    cases: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failures else EXIT_OK


def safe_folder_names(case_ids: Sequence[str]) -> list[str]:
    """Folder names for case ids: unsafe characters replaced, duplicates numbered."""
    seen: dict[str, int] = {}
    out = []
    for cid in case_ids:
        base = _UNSAFE.sub("_", cid).strip().lstrip(".") or "case"
        n = seen.get(base.lower(), 0)
        seen[base.lower()] = n + 1
        out.append(base if n == 0 else f"{base}_{n + 1}")
    return out


# ----------------------------------------------------------------------------- outputs
def _view_error(view: str, message: str, kind: str) -> dict[str, Any]:
    return {"view": view, "measured": False, "error": message, "error_kind": kind}


# ----------------------------------------------------------------------------- one case
MaskFn = Callable[[InputView, np.ndarray], np.ndarray]
ExtraFn = Callable[[InputView, np.ndarray, Path], dict]
"""``extra(view, mask, folder) -> {file key: name}``: more files per view (the DICOM SEG)."""


def process_case(
    case: InputCase,
    folder: Path,
    get_mask: MaskFn,
    settings: Mapping[str, Any],
    method: str = "vertebrae",
    mask_label: str = "predicted masks",
    get_labels: MaskFn | None = None,
    write_extra: ExtraFn | None = None,
    merged_split: str = "centreline",
    corners: CornerRefiner | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Predict, measure and write one case; return its ``measurements.json`` dict and failures.

    ``get_mask(view, raw_image)`` gives the bool mask at the image's size (the predictor's, or the
    manifest's own). A view whose image cannot be read becomes an ``"unreadable"`` error entry
    and a failure; the other views are still measured.

    ``get_labels`` (an 18-class checkpoint) gives a vertebra label map instead; the binary mask
    is then its union, measured as usual, and each view also gets a ``vertebra_level`` entry
    (curves with named end and apex vertebrae, from the end plates of the labelled vertebrae)
    and ``<view>_levels.png``, side by side in ``report_levels.png``.

    ``with_halves(view, raw_image) -> (mask or label map, (plain, mirrored))``, when the function
    that predicts the view (``get_labels`` if given, else ``get_mask``) has it (a predictor with
    flip TTA: :meth:`~r2mfnet.inference.predictions.MaskPredictions.predict_with_halves`), is
    called instead: the prediction and the masks of its two TTA halves, from the same passes.
    Each measured view then gets ``tta_halves``
    (:func:`~r2mfnet.measure.review_flags.tta_halves_entry`), which the review page flags when
    the halves' main angles are more than 10 deg apart.

    ``merged_split`` (the end-plate method's: :func:`~r2mfnet.measure.vertebrae.vertebra_tilts`)
    is used for the views and the TTA halves alike and recorded beside ``tilt_method``.

    ``corners`` (a :class:`~r2mfnet.inference.corner_refiner.CornerRefiner`) reads each
    vertebra's tilt from the view's radiograph where the mask found it (end-plate method; the
    views and the TTA halves alike).
    """
    from r2mfnet.measure.case import case_picture, measure_case, method_kwargs

    kwargs = method_kwargs(method, merged_split)
    read = _read_views(case, folder, get_mask, get_labels, write_extra)
    masks, images, files = read.masks, read.images, read.files
    refine_views = {v: corners.for_image(read.raw[v]) for v in masks} if corners is not None else None
    measured = (measure_case(masks, case_id=case.case_id, method=method, refine_views=refine_views, **kwargs)
                if masks else None)
    views_out = _view_entries(case, measured, read.view_errors)
    _add_tta_halves(views_out, read.halves, method, kwargs, refine_views)
    if measured is not None and measured.views:
        picture = case_picture(measured, images, masks, subtitle=mask_label)
        write_png(folder / "report.png", picture)
        files["report"] = "report.png"
    labels = {view: lab for view, lab in read.labels.items() if view in images}  # readable views only
    if labels:
        files["report_levels"] = _vertebra_levels(labels, images, views_out, files, folder)
    result = {
        "schema": SCHEMA,
        "case_id": case.case_id,
        **settings,
        "tilt_method": method,
        "merged_split": merged_split,
        "inputs": read.inputs,
        "files": files,
        "views": views_out,
        "flexibility": (None if measured is None or measured.flexibility is None
                        else measured.flexibility.to_dict()),
        "notes": RESULT_NOTES,
    }
    atomic_write_json(folder / "measurements.json", result)
    return result, read.failures


RESULT_NOTES = [
    "angles in degrees; Cobb angles are angles between end plates, 'main_angle_deg' the "
    "largest curve, 'tilt_range_deg' the largest angle between any two levels (AASCE)",
    "levels are approximate (estimated along the spine, not identified vertebra by "
    "vertebra); 'side' is the image side, not the patient's",
    "flexibility and curve type are approximate (see docs/measure.md)",
]
"""The ``notes`` of every ``measurements.json``: how to read its numbers."""


@dataclass
class _ReadViews:
    """What reading and predicting a case's views gave, per view name: the inputs' description,
    the written files, the errors of unreadable views, and the images, masks, label maps and
    flip-TTA halves of the readable ones (the measurement and the pictures need them)."""

    failures: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    view_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    """The images as read (no intensity clipping): what the corner network was trained on."""
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    halves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _read_views(case: InputCase, folder: Path, get_mask: MaskFn, get_labels: MaskFn | None,
                write_extra: ExtraFn | None) -> _ReadViews:
    """Read each view, predict its mask (or label map; with its TTA halves when the function has
    ``with_halves``) and write its mask and overlay PNGs; a view that cannot be read or whose mask
    does not fit becomes an ``"unreadable"`` error entry and a failure, so that the other views
    are still measured."""
    from r2mfnet.data.io import read_image
    from r2mfnet.data.preprocess import normalize_intensity

    out = _ReadViews()
    predict = get_labels if get_labels is not None else get_mask
    with_halves = getattr(predict, "with_halves", None)
    for view, iv in case.views.items():
        out.inputs[view] = {"image": str(iv.path), "view_from": iv.view_from}
        try:
            data = read_image(iv.path)
            halves = None
            if with_halves is not None:
                prediction, halves = with_halves(iv, data.array)
            else:
                prediction = predict(iv, data.array)
            if get_labels is not None:
                out.labels[view] = np.asarray(prediction)
                mask = out.labels[view] > 0
            else:
                mask = np.asarray(prediction, dtype=bool)
            if mask.shape != data.array.shape:
                raise DataError(f"mask size {mask.shape[1]} x {mask.shape[0]} px differs from "
                                f"the image's {data.array.shape[1]} x {data.array.shape[0]} px",
                                path=iv.mask or iv.path)
        except R2MFNetError as exc:
            out.failures.append({"case_id": case.case_id, "view": view, "input": str(iv.path),
                                 "error": str(exc)})
            out.view_errors[view] = _view_error(view, str(exc), "unreadable")
            continue
        spacing = iv.pixel_spacing_mm or data.pixel_spacing_mm
        out.inputs[view].update(size_hw=list(data.array.shape), pixel_spacing_mm=spacing)
        image01 = normalize_intensity(data.array)
        out.images[view], out.masks[view], out.raw[view] = image01, mask, data.array
        if halves is not None:
            out.halves[view] = halves
        write_png(folder / f"{view}_mask.png", mask.astype(np.uint8) * 255)
        write_png(folder / f"{view}_overlay.png", overlay(image01, mask))
        out.files[view] = {"mask": f"{view}_mask.png", "overlay": f"{view}_overlay.png"}
        if write_extra is not None:
            out.files[view].update(write_extra(iv, mask, folder))
    return out


def _view_entries(case: InputCase, measured: Any, view_errors: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Each view's ``measurements.json`` entry, in the case's view order: its error entry, or its
    measurement (marked ``"unmeasurable"`` when no angle could be read)."""
    views_out: dict[str, Any] = {}
    for view in case.views:
        if view in view_errors:
            views_out[view] = view_errors[view]
            continue
        d = measured.views[view].to_dict()
        if not d.get("measured"):
            d["error_kind"] = "unmeasurable"
        views_out[view] = d
    return views_out


def _add_tta_halves(views_out: dict[str, Any], halves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    method: str, kwargs: Mapping[str, Any],
                    refine_views: Mapping[str, Any] | None = None) -> None:
    """Each measured view's ``tta_halves`` entry from its two half masks (predicted with it),
    measured like the view (``method``, ``kwargs``, its ``refine``)."""
    if not halves:
        return
    from r2mfnet.measure.case import view_refine
    from r2mfnet.measure.review_flags import tta_halves_entry

    for view, (plain, mirrored) in halves.items():
        if views_out.get(view, {}).get("measured"):
            views_out[view]["tta_halves"] = tta_halves_entry(plain, mirrored, method, **kwargs,
                                                             **view_refine(refine_views, view, method))


def _vertebra_levels(labels: Mapping[str, np.ndarray], images: Mapping[str, np.ndarray],
                     views_out: dict[str, Any], files: dict[str, Any], folder: Path) -> str:
    """Measure each view's label map by named vertebrae; write its picture and the side by side."""
    import cv2

    from r2mfnet.measure.vertebra_labels import draw_labels, measure_labels

    pictures = []
    for view, lab in labels.items():
        try:
            m = measure_labels(lab)
            views_out[view]["vertebra_level"] = m.to_dict()
        except MeasurementError as exc:
            m = None
            views_out[view]["vertebra_level"] = {"error": str(exc)}
        pic = draw_labels(images[view], lab, m, title=view)
        write_png(folder / f"{view}_levels.png", pic)
        files[view]["levels"] = f"{view}_levels.png"
        pictures.append(pic)
    height = max(p.shape[0] for p in pictures)
    row = np.hstack([cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height)) for p in pictures])
    write_png(folder / "report_levels.png", row)
    return "report_levels.png"


# ----------------------------------------------------------------------------- whole run
def _summary_rows(case_result: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    rows = []
    for view, d in case_result["views"].items():
        rows.append({
            "case_id": case_result["case_id"], "folder": folder, "view": view,
            "image": case_result["inputs"].get(view, {}).get("image", ""),
            "measured": bool(d.get("measured")),
            "main_angle_deg": d.get("main_angle_deg", ""),
            "tilt_range_deg": d.get("tilt_range_deg", ""),
            "pt_angle_deg": d.get("pt_angle_deg", ""), "mt_angle_deg": d.get("mt_angle_deg", ""),
            "tl_angle_deg": d.get("tl_angle_deg", ""),
            "error": d.get("error") or "",
        })
    return rows


def how_measured(settings: Mapping[str, Any], method: str, mask_label: str) -> str:
    """The review page's sentence on where the masks and tilts come from (from ``settings``, the
    same record as ``summary.json``)."""
    source = settings.get("checkpoint") or settings.get("onnx_model")
    masks = f"{mask_label} of {source}" if source else mask_label
    if settings.get("ensemble"):
        masks += f" averaged with {', '.join(map(str, settings['ensemble']))}"
    if settings.get("tta_flip"):
        masks += ", flip TTA"
    tilts = ("each vertebra's end plates" if method == "vertebrae" else "the spine's centreline")
    if settings.get("corners"):
        tilts += f", each vertebra's tilt read from the radiograph by the corner network {settings['corners']}"
    return f"Masks: {masks}. Tilts: {tilts}."


def run_predictions(
    cases: Sequence[InputCase],
    output_dir: str | Path,
    get_mask: MaskFn,
    settings: Mapping[str, Any] | None = None,
    method: str = "vertebrae",
    mask_label: str = "predicted masks",
    progress: bool = True,
    ignored: Sequence[str] = (),
    get_labels: MaskFn | None = None,
    write_extra: ExtraFn | None = None,
    merged_split: str = "centreline",
    corners: CornerRefiner | None = None,
) -> PredictSummary:
    """Process every case (see :func:`process_case`), then write ``summary.json``/``.csv``."""
    from r2mfnet.measure.case import method_kwargs

    method_kwargs(method, merged_split)  # a bad setting stops the run before the first case
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(settings or {})
    summary = PredictSummary(out, ignored=list(ignored))
    names = safe_folder_names([c.case_id for c in cases])
    iterator: Any = list(zip(cases, names))
    bar = None
    if progress and len(cases) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(iterator, desc="predict", unit="case", dynamic_ncols=True)
        iterator = bar
    rows: list[dict[str, Any]] = []
    results: list[tuple[str, dict[str, Any]]] = []
    for case, name in iterator:
        result, failures = process_case(case, out / name, get_mask, settings, method, mask_label, get_labels,
                                        write_extra, merged_split=merged_split, corners=corners)
        for f in failures:
            msg = f"r2mfnet: skipped unreadable input {f['input']}: {f['error']}"
            (bar.write if bar is not None else print)(msg)
        summary.failures.extend(failures)
        results.append((name, result))
        case_rows = _summary_rows(result, name)
        rows.extend(case_rows)
        summary.cases.append({"case_id": case.case_id, "folder": name,
                              "views": {r["view"]: {k: r[k] for k in ("measured", "main_angle_deg",
                                                                      "tilt_range_deg", "error")}
                                        for r in case_rows}})
    atomic_write_json(out / "summary.json", {
        "schema": SCHEMA, **settings, "tilt_method": method, "merged_split": merged_split,
        "n_cases": len(cases), "n_views": sum(len(c.views) for c in cases),
        "n_failed_inputs": len(summary.failures), "failed_inputs": summary.failures,
        "ignored_files": summary.ignored, "cases": summary.cases,
    })
    buf = io.StringIO()
    fields = ["case_id", "folder", "view", "image", "measured", "main_angle_deg", "tilt_range_deg",
              "pt_angle_deg", "mt_angle_deg", "tl_angle_deg", "error"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "summary.csv", buf.getvalue())
    write_review_page(out, results, title=f"r2mfnet review: {len(cases)} case(s), {settings.get('input', '')}",
                      how_measured=how_measured(settings, method, mask_label))
    return summary
