"""A generated synthetic set for the Cobb evaluation: angles per view and flexibility per case.

Reference: the generator's angles of each view (``cases.json``: ``cobb_deg`` per view, the
largest angle between two of its landmarked vertebrae; angles 2 and 3 by the AASCE rule on its
landmarks), and the flexibility of the main curve. The masks come from the same
:class:`~r2mfnet.evaluation.cobb_harness.Source` objects as on SpineWeb16 (ground truth, a predictor);
the statistics rows from :func:`~r2mfnet.evaluation.cobb_harness.source_rows`, one per source and view.
Unlike SpineWeb16, a case's three views are measured together (:func:`r2mfnet.measure.case.
measure_case`) so that the flexibility of its curves can be compared too.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from r2mfnet.errors import DataError
from r2mfnet.evaluation.cobb_harness import (Image, Source, ensemble_words, merged_split_words,
                                             progress_bar, rows_markdown, source_rows)
from r2mfnet.evaluation.cobb_spineweb16 import mask_sources


def _same_curve(ours: Any, main: dict[str, Any]) -> bool:
    from r2mfnet.data.views import LEVELS

    return (abs(LEVELS.index(ours.curve.upper_level) - LEVELS.index(main["upper_end"])) <= 1
            and abs(LEVELS.index(ours.curve.lower_level) - LEVELS.index(main["lower_end"])) <= 1)


def _case_images(cid: str, views: dict[str, Any], rec: dict[str, Any]) -> dict[str, Image]:
    """Each view as an :class:`Image` whose reference is the generator's angle 1 and the AASCE
    rule's angles 2 and 3 on its landmarks."""
    from r2mfnet.data.io import image_shape
    from r2mfnet.measure.aasce import aasce_angles_from_landmarks

    out = {}
    for view, vr in views.items():
        shape = tuple(image_shape(vr.image)[:2])
        lm = json.loads(Path(vr.landmarks).read_text(encoding="utf-8"))
        ref = list(aasce_angles_from_landmarks(np.asarray(lm["corners"]), shape[0]))
        ref[0] = float(rec["cobb_deg"][view])  # the generator's own number
        out[view] = Image(cid, Path(vr.image), tuple(ref), shape, vr.mask, vr.landmarks, view)
    return out


def _flexibility_item(case: Any, cid: str, main: dict[str, Any]) -> dict[str, Any] | None:
    cd = main["cobb_deg"]
    if case.flexibility is None or not case.flexibility.curves or cd["coronal"] < 10:
        return None
    ours = max(case.flexibility.curves, key=lambda f: f.coronal_angle)
    if ours.flexibility is None:
        return None
    expected = (cd["coronal"] - min(cd["left_bending"], cd["right_bending"])) / cd["coronal"]
    return {"case_id": cid, "same_curve": _same_curve(ours, main),
            "measured": float(ours.flexibility), "reference": float(expected)}


def _flexibility_rows(flex: dict[str, list[dict[str, Any]]], keys: list[str]) -> list[dict[str, Any]]:
    rows = []
    for key, items in sorted(flex.items(), key=lambda kv: keys.index(kv[0])):
        same = [f for f in items if f["same_curve"]]
        err = np.array([f["measured"] - f["reference"] for f in same])
        rows.append({"source": key, "n_cases": len(items), "n_same_curve": len(same),
                     "mae": float(np.abs(err).mean()) if err.size else float("nan"),
                     "max_abs": float(np.abs(err).max()) if err.size else float("nan")})
    return rows


def evaluate_synthetic(
    manifest: str | Path,
    predictor: Any = None,
    methods: Sequence[str] = ("vertebrae", "centreline"),
    progress: bool = True,
    merged_split: str = "centreline",
) -> dict[str, Any]:
    """Angles from ground-truth (and predicted) masks vs the generator's, per view and source.

    Per source, view and method: the statistics of :func:`~r2mfnet.evaluation.cobb_harness.source_rows`.
    Per source and method: the main curve's flexibility against the generator's
    ``(coronal - min(bending)) / coronal``, for cases whose coronal main curve is >= 10 degrees
    and where the measured main curve has the generator's end vertebrae (within one level).
    ``merged_split`` goes to every source's end-plate measurement (ground truth and predicted).
    """
    from r2mfnet.data.manifest import load_manifest, records_by_case
    from r2mfnet.data.views import VIEWS
    from r2mfnet.measure.aasce import aasce_angles_from_measurement
    from r2mfnet.measure.case import measure_case, method_kwargs

    kwargs = {m: method_kwargs(m, merged_split) for m in methods}  # checked before any case
    manifest = Path(manifest)
    cases_file = manifest.parent / "cases.json"
    if not cases_file.is_file():
        raise DataError("synthetic data set has no cases.json beside its manifest", path=cases_file)
    cases = {c["case_id"]: c for c in json.loads(cases_file.read_text(encoding="utf-8"))["cases"]}
    by_case = records_by_case(load_manifest(manifest, check_images=False))
    sources: list[Source] = mask_sources(predictor)
    per_view: list[dict[str, Any]] = []
    flex: dict[str, list[dict[str, Any]]] = {}
    for cid in progress_bar(sorted(by_case), "synthetic angles", progress):
        if cid not in cases:
            continue
        images = _case_images(cid, by_case[cid], cases[cid])
        memos: dict[str, dict] = {view: {} for view in images}
        for source in sources:
            masks = {view: source.get(img, memos[view]) for view, img in images.items()}
            for m in methods:
                case = measure_case(masks, case_id=cid, method=m, **kwargs[m])
                for view, vm in case.views.items():
                    tri = None if vm.cobb is None else list(
                        aasce_angles_from_measurement(vm.cobb, vm.centreline, masks[view].shape[0]))
                    per_view.append({"case_id": cid, "view": view, "source": f"{source.name}/{m}",
                                     "reference": list(images[view].reference), "measured": tri,
                                     "error": vm.error})
                item = _flexibility_item(case, cid, cases[cid]["curves"][cases[cid]["main_curve"]])
                if item is not None:
                    flex.setdefault(f"{source.name}/{m}", []).append(item)
    keys = [f"{s.name}/{m}" for s in sources for m in methods]
    rows = []
    for key in keys:
        for view in VIEWS:
            sel = [{"case_id": r["case_id"], "reference": r["reference"], "measured": {key: r["measured"]}}
                   for r in per_view if r["source"] == key and r["view"] == view]
            rows += [{**row, "view": view, "what": f"{row['what']}, {view}"}
                     for row in source_rows(sel, [key], sources)]
    return {"dataset": "synthetic", "n_cases": len(by_case), "merged_split": merged_split,
            "reference": "generator: cobb_deg per view (angle 1); AASCE rule on its landmarks",
            "rows": rows, "flexibility": _flexibility_rows(flex, keys), "per_view": per_view,
            "per_case_flexibility": flex}


def synthetic_markdown(result: dict[str, Any]) -> str:
    """The synthetic evaluation's tables: angles per source and view, then flexibility. With an
    ensemble the first line also names the checkpoint its members are averaged with (as the
    SpineWeb16 report's: ``checkpoint a.pt; ensemble: probabilities averaged with b.pt``)."""
    primary = (f"; checkpoint {result['checkpoint']}"
               if result.get("ensemble") and result.get("checkpoint") else "")
    lines = [f"Synthetic, {result['n_cases']} cases x 3 views; reference: the generator's angle of "
             "each view (angle 1), the AASCE rule on its landmarks (angles 2, 3)"
             f"{merged_split_words(result)}{primary}{ensemble_words(result)}.", "", rows_markdown(result["rows"])]
    if result.get("flexibility"):
        lines += ["", "Main-curve flexibility (fraction) vs the generator, cases with a coronal main "
                  "curve >= 10 deg where the measured main curve has the generator's end vertebrae "
                  "(+-1 level):", "", "| source | cases | same curve | MAE | max err |", "|---|---|---|---|---|"]
        lines += [f"| {r['source']} | {r['n_cases']} | {r['n_same_curve']} | {r['mae']:.3f} | {r['max_abs']:.3f} |"
                  for r in result["flexibility"]]
    return "\n".join(lines) + "\n"
