"""How good are the angles measured from masks? Evaluation against expert and known angles.

SpineWeb16 (:func:`evaluate_spineweb16`)
    Reference: the experts' three angles of ``angles.csv`` (stored by the SpineWeb16 preparation
    in each landmarks JSON as ``cobb_angles_deg``). They follow the AASCE challenge script's rule
    (:mod:`r2mfnet.measure.aasce`): angle 1 is the largest angle between any two vertebrae,
    angles 2 and 3 are the curves above and below it (or two above it), **not** anatomical PT /
    MT / TL-L regions. So the measured triple is that same rule applied to the mask's tilt
    profile (:func:`~r2mfnet.measure.aasce.aasce_angles_from_measurement`); angle 1 is then the
    measurement's ``tilt_range``, the definition ``docs/measure.md`` gives as matching
    ``angles.csv``. Rows: angles from the landmarks (a check of the rule: in the files' own order
    it reproduces ``angles.csv``), from the ground-truth masks and, given a checkpoint, from
    predicted masks, for each tilt method (``vertebrae`` = end plates, ``centreline``).
Synthetic (:func:`evaluate_synthetic`)
    Reference: the generator's angles of each view (``cases.json``: ``cobb_deg`` per view, the
    largest angle between two of its landmarked vertebrae; the three-angle triple from its
    landmarks), per view; and the flexibility of the main curve.
Measures (:func:`angle_stats`)
    SMAPE as defined by the AASCE challenge: the mean over images of
    ``sum|measured - reference| / sum(measured + reference)`` over the three angles, x 100 (an
    image whose six angles are all 0 counts as 0); mean absolute error, mean signed error
    (bias), largest error and Pearson correlation of angle 1 (the main angle); mean absolute
    error of angles 2 and 3. An image whose mask cannot be measured is counted (``n_failed``) and
    left out of the statistics.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from r2mfnet.errors import DataError, MeasurementError, R2MFNetError
from r2mfnet.measure.aasce import aasce_angles_from_landmarks, aasce_angles_from_measurement
from r2mfnet.measure.case import METHODS, measure_case, measure_view

log = logging.getLogger("r2mfnet.measure.evaluate")

METHOD_LABELS = {"vertebrae": "end plates", "centreline": "centreline"}


# ----------------------------------------------------------------------------- statistics
def smape(measured: np.ndarray, reference: np.ndarray) -> float:
    """AASCE SMAPE in percent: mean over images of sum|a - b| / sum(a + b) over the angles.

    ``measured`` and ``reference`` are ``(N, K)`` (K = 3 for the challenge) or ``(N,)``.
    """
    a = np.asarray(measured, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape[0] == 0:
        return float("nan")
    num = np.abs(a - b).sum(axis=1)
    den = (a + b).sum(axis=1)
    per_image = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(per_image.mean() * 100.0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN for fewer than 3 pairs or a constant input."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def angle_stats(measured: Sequence[Sequence[float] | None], reference: Sequence[Sequence[float]]
                ) -> dict[str, Any]:
    """Statistics of measured angle triples against reference triples (``None`` = failed).

    Angle 1 of each triple is the main angle. Returns ``n``, ``n_failed``, ``smape_pct``,
    ``mae_main_deg``, ``bias_main_deg``, ``max_abs_main_deg``, ``pearson_main``,
    ``mae_angle2_deg``, ``mae_angle3_deg`` (floats rounded for reports; NaN when undefined).
    """
    pairs = [(m, r) for m, r in zip(measured, reference) if m is not None]
    n_failed = len(measured) - len(pairs)
    out: dict[str, Any] = {"n": len(pairs), "n_failed": n_failed}
    if not pairs:
        return {**out, **{k: float("nan") for k in ("smape_pct", "mae_main_deg", "bias_main_deg",
                                                     "max_abs_main_deg", "pearson_main",
                                                     "mae_angle2_deg", "mae_angle3_deg")}}
    a = np.array([p[0] for p in pairs], dtype=np.float64).reshape(len(pairs), -1)
    b = np.array([p[1] for p in pairs], dtype=np.float64).reshape(len(pairs), -1)
    err = a - b
    out.update(
        smape_pct=smape(a, b),
        mae_main_deg=float(np.abs(err[:, 0]).mean()),
        bias_main_deg=float(err[:, 0].mean()),
        max_abs_main_deg=float(np.abs(err[:, 0]).max()),
        pearson_main=pearson(a[:, 0], b[:, 0]),
        mae_angle2_deg=float(np.abs(err[:, 1]).mean()) if a.shape[1] > 1 else float("nan"),
        mae_angle3_deg=float(np.abs(err[:, 2]).mean()) if a.shape[1] > 2 else float("nan"),
    )
    return out


def _round(obj: Any, nd: int = 3) -> Any:
    """Round floats for JSON; NaN becomes None (JSON has no NaN)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, nd) for v in obj]
    return obj


# ----------------------------------------------------------------------------- measuring
def measure_triple(mask: np.ndarray, method: str) -> tuple[list[float] | None, str | None]:
    """The three ``angles.csv``-rule angles of one mask, or ``(None, reason)``."""
    vm = measure_view("coronal", mask, method=method)
    if vm.cobb is None or vm.centreline is None:
        return None, vm.error
    try:
        return [float(x) for x in aasce_angles_from_measurement(vm.cobb, vm.centreline,
                                                                mask.shape[0])], None
    except MeasurementError as exc:
        return None, str(exc)


def _progress(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, dynamic_ncols=True)


def _checkpoint_test_case_ids(checkpoint: Path, records: Sequence[Any], source: str
                              ) -> tuple[set[str] | None, str]:
    """Case ids held out by the checkpoint's own split, when it was trained on ``source``.

    Returns ``(ids, note)``; ``ids`` is None when the checkpoint was trained on other data (then
    every image of this data set is unseen by it).
    """
    from r2mfnet.data.splits import split_by_patient
    from r2mfnet.training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    data = (state.get("config") or {}).get("data") or {}
    if data.get("source") != source:
        return None, f"checkpoint trained on '{data.get('source', 'unknown')}': all images unseen"
    sp = data.get("split") or {}
    splits = split_by_patient(records, val_fraction=float(sp.get("val_fraction", 0.15)),
                              test_fraction=float(sp.get("test_fraction", 0.15)),
                              seed=int(sp.get("seed", 0)))
    ids = {r.case_id for r in splits["test"]}
    return ids, f"the checkpoint's own test split ({len(ids)} images, patients unseen in training)"


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
) -> dict[str, Any]:
    """Angles from landmarks, ground-truth masks and (optionally) predicted masks vs ``angles.csv``.

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
            pred_ids, pred_note = _checkpoint_test_case_ids(Path(checkpoint), records_all,
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
            for m in methods:
                tri, err = measure_triple(gt, m)
                row["measured"][f"gt/{m}"] = tri
                if err:
                    row["errors"][f"gt/{m}"] = err
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


REFERENCE_TOLERANCE_DEG = 5.0
"""An ``angles.csv`` angle 1 further than this from the same rule on the image's own landmarks
(corners in a consistent order) is a reference artefact, not an expert disagreement."""


def summarize_spineweb16(per_image: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Statistics rows for every source, on all images and on reference-consistent images.

    ``angles.csv`` was computed by the challenge script from the label files as they are; where a
    vertebra's corners are listed in another order the script's mid-line is reversed and its
    angle 1 is nonsense (one image of the release: 156 degrees). Such images are those whose
    ``angles.csv`` angle 1 differs by more than :data:`REFERENCE_TOLERANCE_DEG` from the rule on
    the same landmarks in a consistent corner order (``landmarks/prepared``); the second set of
    rows leaves them out. Returns ``{"rows", "rows_consistent", "reference_artefacts"}``.
    """
    keys: list[str] = []
    for r in per_image:
        for k in r["measured"]:
            if k not in keys:
                keys.append(k)
    order = {"landmarks": 0, "gt": 1, "pred": 2}
    keys.sort(key=lambda k: (order.get(k.split("/")[0], 3), k != "landmarks/file_order"))
    artefacts = [r["case_id"] for r in per_image
                 if r["measured"].get("landmarks/prepared") is not None
                 and abs(r["measured"]["landmarks/prepared"][0] - r["reference"][0])
                 > REFERENCE_TOLERANCE_DEG]

    def rows_for(images: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for key in keys:
            sel = [r for r in images if key in r["measured"]]
            if sel:
                rows.append({"source": key, **angle_stats([r["measured"][key] for r in sel],
                                                          [r["reference"] for r in sel])})
        return rows

    consistent = [r for r in per_image if r["case_id"] not in set(artefacts)]
    return {"rows": rows_for(per_image), "rows_consistent": rows_for(consistent),
            "reference_artefacts": artefacts}


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


# ----------------------------------------------------------------------------- reports
def _f(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{nd}f}"


def _source_label(key: str) -> tuple[str, str]:
    kind, _, rest = key.partition("/")
    if kind == "landmarks":
        return ("landmarks (label files' order)" if rest == "file_order"
                else "landmarks (prepared, reordered)"), "-"
    masks = {"gt": "ground-truth masks", "pred": "predicted masks"}.get(kind, kind)
    return masks, METHOD_LABELS.get(rest, rest)


def _sw_row(r: dict[str, Any]) -> str:
    src, meth = _source_label(r["source"])
    return (f"| {src} | {meth} | {r['n']} | {r['n_failed']} | {_f(r['smape_pct'], 2)} | "
            f"{_f(r['mae_main_deg'], 2)} | {_f(r['bias_main_deg'], 2)} | "
            f"{_f(r['max_abs_main_deg'])} | {_f(r['pearson_main'], 3)} | "
            f"{_f(r['mae_angle2_deg'], 2)} | {_f(r['mae_angle3_deg'], 2)} |")


def to_markdown(result: dict[str, Any]) -> str:
    """Markdown tables of an evaluation result (SpineWeb16 or synthetic)."""
    lines: list[str] = []
    if result["dataset"] == "spineweb16":
        lines += [
            f"SpineWeb16, {result['n_images']} images; reference: experts' angles.csv "
            "(angle 1 = main; angles 2, 3 by the AASCE rule).",
            "",
            "| angles from | tilt method | n | failed | SMAPE % | MAE main (deg) | bias main | "
            "max err main | r main | MAE angle 2 | MAE angle 3 |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        header = lines[-2:]
        for r in result["rows"]:
            lines.append(_sw_row(r))
        if result.get("reference_artefacts"):
            names = ", ".join(f"'{c}'" for c in result["reference_artefacts"])
            lines += ["", f"Without the {len(result['reference_artefacts'])} image(s) whose "
                      f"angles.csv angle 1 is not reproduced by the AASCE rule on their own "
                      f"landmarks (reference artefact: {names}):", "", *header]
            lines += [_sw_row(r) for r in result["rows_consistent"]]
        if result.get("predicted_on"):
            lines += ["", f"Predicted masks: {result['predicted_on']}"
                      + (f"; checkpoint {result['checkpoint']}" if result.get("checkpoint") else "")
                      + "."]
    else:
        lines += [
            f"Synthetic, {result['n_cases']} cases x 3 views; reference: the generator's angle "
            "of each view (angle 1), the AASCE rule on its landmarks (angles 2, 3).",
            "",
            "| masks | tilt method | view | n | failed | MAE main (deg) | bias main | max err main | "
            "r main | SMAPE % |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["rows"]:
            src, meth = _source_label(r["source"])
            lines.append(
                f"| {src} | {meth} | {r['view']} | {r['n']} | {r['n_failed']} | "
                f"{_f(r['mae_main_deg'], 2)} | {_f(r['bias_main_deg'], 2)} | "
                f"{_f(r['max_abs_main_deg'])} | {_f(r['pearson_main'], 3)} | {_f(r['smape_pct'], 2)} |")
        if result.get("flexibility"):
            lines += ["", "Main-curve flexibility (fraction) vs the generator, cases with a coronal "
                      "main curve >= 10 deg where the measured main curve has the generator's end "
                      "vertebrae (+-1 level):", "",
                      "| masks | tilt method | cases | same curve | MAE | max err |",
                      "|---|---|---|---|---|---|"]
            for r in result["flexibility"]:
                src, meth = _source_label(r["source"])
                lines.append(f"| {src} | {meth} | {r['n_cases']} | {r['n_same_curve']} | "
                             f"{_f(r['mae'], 3)} | {_f(r['max_abs'], 3)} |")
    return "\n".join(lines) + "\n"


def write_result(result: dict[str, Any], output_dir: str | Path, command: str | None = None
                 ) -> tuple[Path, Path]:
    """Write ``measure_eval.json`` (summary and per-image rows) and ``measure_eval.md``."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text

    out = Path(output_dir)
    payload = dict(result)
    if command:
        payload = {"command": command, **payload}
    j = atomic_write_json(out / "measure_eval.json", _round(payload))
    md = to_markdown(result)
    if command:
        md = f"Command: `{command}`\n\n" + md
    m = atomic_write_text(out / "measure_eval.md", md)
    return j, m


# ----------------------------------------------------------------------------- command line
CLI_OPTIONS = {"dataset", "root", "cache_dir", "checkpoint", "split", "methods", "every", "limit",
               "num_cases", "seed", "image_height", "image_width", "output_dir", "tta_flip",
               "device", "threshold", "progress"}


def evaluate_cobb_from_cli(argv: list[str]) -> dict[str, Any]:
    """``scripts/evaluate_cobb.py``: parse ``key=value`` arguments, evaluate, write, print."""
    import os
    import shlex

    from omegaconf import OmegaConf

    from r2mfnet.errors import ConfigError

    bad = [a for a in argv if "=" not in a]
    if bad:
        raise ConfigError(f"arguments must be key=value, got {bad}; e.g. dataset=spineweb16")
    args = OmegaConf.to_container(OmegaConf.from_dotlist(argv))
    unknown = sorted(set(args) - CLI_OPTIONS)  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; known: {sorted(CLI_OPTIONS)}")
    dataset = str(args.get("dataset", "spineweb16"))
    if dataset not in ("spineweb16", "synthetic"):
        raise ConfigError(f"dataset must be spineweb16 or synthetic, got '{dataset}'")
    methods = args.get("methods", ["vertebrae", "centreline"])
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    bad_m = [m for m in methods if m not in METHODS]
    if bad_m or not methods:
        raise ConfigError(f"methods must be a comma-separated subset of {', '.join(METHODS)}")
    cache = Path(os.path.expanduser(str(args.get("cache_dir") or
                                        os.environ.get("R2MFNET_CACHE_DIR", ".cache/r2mfnet"))))
    predictor = None
    checkpoint = args.get("checkpoint")
    if checkpoint:
        from r2mfnet.inference.predictor import Predictor

        predictor = Predictor.from_checkpoint(
            str(checkpoint), tta_flip=bool(args.get("tta_flip", False)), device=args.get("device"),
            threshold=float(args.get("threshold", 0.5)))
    progress = bool(args.get("progress", True))
    if dataset == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(str(args["root"])) if args.get("root") else default_root()
        manifest = prepare_spineweb16(root, cache / "spineweb16")
        result = evaluate_spineweb16(
            manifest, root=root, predictor=predictor, checkpoint=checkpoint,
            split=str(args.get("split", "test")), methods=methods,
            every=int(args.get("every", 1)),
            limit=None if args.get("limit") is None else int(args["limit"]), progress=progress)
    else:
        from r2mfnet.data.synthetic import ensure_dataset

        manifest = ensure_dataset(
            cache / "synthetic", num_cases=int(args.get("num_cases", 30)),
            seed=int(args.get("seed", 1)), image_height=int(args.get("image_height", 512)),
            image_width=int(args.get("image_width", 256)))
        result = evaluate_synthetic(manifest, predictor=predictor, methods=methods,
                                    progress=progress)
    if checkpoint:
        result["checkpoint"] = str(checkpoint)
    out = Path(str(args.get("output_dir") or Path("outputs") / "measure_eval" / dataset))
    command = "python scripts/evaluate_cobb.py " + " ".join(shlex.quote(a) for a in argv)
    j, m = write_result(result, out, command)
    print(to_markdown(result))
    print(f"written: {j} and {m}")
    return result
