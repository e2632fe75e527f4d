"""The Cobb-angle evaluation harness: measure every image of a data set, score against references.

Runs the ground-truth masks (and, given a predictor, its predicted masks) of SpineWeb16 or of a
generated synthetic set through the clinical measurement, and returns per-image rows and the
statistics of :mod:`r2mfnet.measure.evaluate` (definitions there and in ``docs/clinical.md``).
The command is :mod:`r2mfnet.apps.evaluate_cobb`; the tables :mod:`r2mfnet.apps.cobb_report`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from r2mfnet.errors import DataError, R2MFNetError
from r2mfnet.evaluation.held_out import checkpoint_test_case_ids
from r2mfnet.measure.aasce import aasce_angles_from_landmarks, aasce_angles_from_measurement
from r2mfnet.measure.case import METHODS, measure_case
from r2mfnet.measure.evaluate import angle_stats, measure_triple, summarize_spineweb16


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, dynamic_ncols=True)


# ----------------------------------------------------------------------------- SpineWeb16
def evaluate_spineweb16(
    manifest: str | Path,
    root: str | Path | None = None,
    predictor: Any = None,
    checkpoint: str | Path | None = None,
    split: str = "test",
    methods: Sequence[str] = ("vertebrae", "centreline"),
    every: int = 1,
    limit: int | None = None,
    progress: bool = True,
    gt_at: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Angles from landmarks, ground-truth masks and (optionally) predicted masks vs ``angles.csv``.

    ``gt_at=(height, width)`` adds rows ``gt@<h>x<w>/<method>``: the ground-truth mask
    letterboxed to that input size and mapped back, i.e. what a perfect model at that input size
    would hand the measurement; the ceiling that the input size puts on the angles.

    ``manifest`` is the prepared SpineWeb16 manifest (:func:`r2mfnet.data.spineweb16.
    prepare_spineweb16`); ``root`` the original data folder, to also check the rule on the
    landmarks in the label files' own order. ``predictor`` (with ``checkpoint``, to find its test
    split) adds predicted-mask rows on ``split="test"`` (the checkpoint's held-out patients, when
    it was trained on SpineWeb16) or ``"all"``. ``every``/``limit`` take a subset (every k-th
    image, then the first ``limit``) when time is short. Returns ``{"rows", "per_image", ...}``.
    """
    from r2mfnet.data.io import image_shape, read_image, read_mask
    from r2mfnet.data.manifest import load_manifest

    records_all = load_manifest(manifest, check_images=False)
    records = [r for r in records_all if r.landmarks is not None][:: max(1, int(every))]
    if limit is not None:
        records = records[: int(limit)]
    if not records:
        raise DataError("no SpineWeb16 images with landmarks to evaluate", path=manifest)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; known: {METHODS}")
    pred_ids: set[str] | None = None
    pred_note = ""
    if predictor is not None:
        if split == "test" and checkpoint is not None:
            pred_ids, pred_note = checkpoint_test_case_ids(Path(checkpoint), records_all,
                                                            "spineweb16")
        elif split != "all":
            raise ValueError("split must be 'test' (needs the checkpoint path) or 'all'")
        else:
            pred_note = "all images (split=all: some may have been seen in training)"
    if pred_ids is not None:
        # Every row on the same held-out images, so predicted and ground-truth rows compare.
        records = [r for r in records if r.case_id in pred_ids]
        if not records:
            raise DataError("none of the selected images is in the checkpoint's test split; "
                            "use split=all or a larger subset", path=manifest)
    per_image: list[dict[str, Any]] = []
    for rec in _progress(records, "SpineWeb16 angles", progress):
        lm = json.loads(Path(rec.landmarks).read_text(encoding="utf-8"))
        ref = lm.get("cobb_angles_deg")
        if ref is None:
            continue
        height = image_shape(rec.image)[0]
        row: dict[str, Any] = {"case_id": rec.case_id, "reference": [float(x) for x in ref],
                               "measured": {}, "errors": {}}
        row["measured"]["landmarks/prepared"] = list(
            aasce_angles_from_landmarks(np.asarray(lm["corners"]), height))
        if root is not None:
            mat = Path(root) / "labels" / (Path(rec.image).name + ".mat")
            if mat.is_file():
                from r2mfnet.data.spineweb16 import read_quadrilaterals

                row["measured"]["landmarks/file_order"] = list(
                    aasce_angles_from_landmarks(read_quadrilaterals(mat), height))
        gt = read_mask(rec.mask) if rec.mask is not None else None
        if gt is not None:
            masks = {"gt": gt}
            if gt_at is not None:
                from r2mfnet.data.preprocess import Letterbox

                box = Letterbox(int(gt_at[0]), int(gt_at[1])).fit(gt)
                masks[f"gt@{int(gt_at[0])}x{int(gt_at[1])}"] = box.invert(box.apply_mask(gt))
            for source, mask in masks.items():
                for m in methods:
                    tri, err = measure_triple(mask, m)
                    row["measured"][f"{source}/{m}"] = tri
                    if err:
                        row["errors"][f"{source}/{m}"] = err
        if predictor is not None and (pred_ids is None or rec.case_id in pred_ids):
            try:
                pred = predictor.predict_mask(read_image(rec.image).array)
            except R2MFNetError as exc:
                pred, row["errors"]["pred"] = None, str(exc)
            for m in methods:
                tri, err = (None, "image unreadable") if pred is None else measure_triple(pred, m)
                row["measured"][f"pred/{m}"] = tri
                if err:
                    row["errors"][f"pred/{m}"] = err
        per_image.append(row)
    if not per_image:
        raise DataError("no image of the manifest has expert angles (cobb_angles_deg)", path=manifest)
    return {
        "dataset": "spineweb16",
        "reference": "angles.csv (experts), AASCE rule; angle 1 = main",
        "n_images": len(per_image),
        "predicted_on": pred_note or None,
        **summarize_spineweb16(per_image),
        "per_image": per_image,
    }


# ----------------------------------------------------------------------------- synthetic
def _same_curve(ours: Any, main: dict[str, Any]) -> bool:
    from r2mfnet.data.views import LEVELS

    return (abs(LEVELS.index(ours.curve.upper_level) - LEVELS.index(main["upper_end"])) <= 1
            and abs(LEVELS.index(ours.curve.lower_level) - LEVELS.index(main["lower_end"])) <= 1)


def evaluate_synthetic(
    manifest: str | Path,
    predictor: Any = None,
    methods: Sequence[str] = ("vertebrae", "centreline"),
    progress: bool = True,
) -> dict[str, Any]:
    """Angles from ground-truth (and predicted) masks vs the generator's, per view.

    ``manifest`` is a generated synthetic data set's manifest (``cases.json`` beside it).
    Per view and method: statistics of angle 1 (``tilt_range``) against the view's ``cobb_deg``
    and SMAPE of the three-angle rule against the same rule on the landmarks. Per method: the
    main curve's flexibility against the generator's ``(coronal - min(bending)) / coronal``,
    for cases whose coronal main curve is >= 10 degrees and where the measured main curve has the
    generator's end vertebrae (within one level).
    """
    from r2mfnet.data.io import read_image, read_mask
    from r2mfnet.data.manifest import load_manifest, records_by_case

    manifest = Path(manifest)
    cases_file = manifest.parent / "cases.json"
    if not cases_file.is_file():
        raise DataError("synthetic data set has no cases.json beside its manifest", path=cases_file)
    cases = {c["case_id"]: c for c in json.loads(cases_file.read_text(encoding="utf-8"))["cases"]}
    by_case = records_by_case(load_manifest(manifest, check_images=False))
    sources = [("gt", None)] + ([("pred", predictor)] if predictor is not None else [])
    per_view: list[dict[str, Any]] = []
    flex: dict[str, list[dict[str, Any]]] = {}
    for cid in _progress(sorted(by_case), "synthetic angles", progress):
        rec = cases.get(cid)
        if rec is None:
            continue
        views = by_case[cid]
        main = rec["curves"][rec["main_curve"]]
        for src, pr in sources:
            masks: dict[str, np.ndarray] = {}
            for view, vr in views.items():
                if pr is None:
                    masks[view] = read_mask(vr.mask)
                else:
                    masks[view] = pr.predict_mask(read_image(vr.image).array)
            for m in methods:
                case = measure_case(masks, case_id=cid, method=m)
                for view, vm in case.views.items():
                    lm = json.loads(Path(views[view].landmarks).read_text(encoding="utf-8"))
                    h = masks[view].shape[0]
                    ref_tri = list(aasce_angles_from_landmarks(np.asarray(lm["corners"]), h))
                    ref_tri[0] = float(rec["cobb_deg"][view])  # the generator's own number
                    tri = None
                    if vm.cobb is not None:
                        tri = list(aasce_angles_from_measurement(vm.cobb, vm.centreline, h))
                    per_view.append({"case_id": cid, "view": view, "source": f"{src}/{m}",
                                     "reference": ref_tri, "measured": tri, "error": vm.error})
                cd = main["cobb_deg"]
                if case.flexibility is None or not case.flexibility.curves or cd["coronal"] < 10:
                    continue
                ours = max(case.flexibility.curves, key=lambda f: f.coronal_angle)
                if ours.flexibility is None:
                    continue
                expected = (cd["coronal"] - min(cd["left_bending"], cd["right_bending"])) / cd["coronal"]
                flex.setdefault(f"{src}/{m}", []).append({
                    "case_id": cid, "same_curve": _same_curve(ours, main),
                    "measured": float(ours.flexibility), "reference": float(expected)})
    rows = []
    keys = sorted({r["source"] for r in per_view},
                  key=lambda k: (k.split("/")[0] != "gt", list(methods).index(k.split("/")[1])))
    from r2mfnet.data.views import VIEWS

    for key in keys:
        for view in VIEWS:
            sel = [r for r in per_view if r["source"] == key and r["view"] == view]
            if sel:
                rows.append({"source": key, "view": view,
                             **angle_stats([r["measured"] for r in sel], [r["reference"] for r in sel])})
    flex_rows = []
    for key, items in sorted(flex.items(), key=lambda kv: keys.index(kv[0])):
        same = [f for f in items if f["same_curve"]]
        err = np.array([f["measured"] - f["reference"] for f in same])
        flex_rows.append({"source": key, "n_cases": len(items), "n_same_curve": len(same),
                          "mae": float(np.abs(err).mean()) if err.size else float("nan"),
                          "max_abs": float(np.abs(err).max()) if err.size else float("nan")})
    return {"dataset": "synthetic", "n_cases": len(by_case),
            "reference": "generator: cobb_deg per view (angle 1); AASCE rule on its landmarks",
            "rows": rows, "flexibility": flex_rows, "per_view": per_view, "per_case_flexibility": flex}
