"""SpineWeb16: binary-mask measurement vs vertebra-level measurement, against ``angles.csv``.

For every image of the prepared SpineWeb16 manifest (or every k-th, ``every=``) the experts'
three angles (``angles.csv``, stored in each landmarks JSON as ``cobb_angles_deg``) are compared
with the angles measured

* from the **binary** ground-truth mask by the clinical layer's two tilt methods
  (:func:`r2mfnet.measure.evaluate.measure_triple`: ``vertebrae`` = end plates of the mask's
  separate parts, ``centreline``), levels approximate;
* from the **vertebra label map** painted from the same landmarks (:mod:`r2mfnet.data.labels`)
  by :func:`r2mfnet.measure.vertebra_labels.measure_labels` (cleaning rules, sub-pixel end-plate
  fit of each named vertebra); the triple applies the AASCE rule
  (:func:`r2mfnet.measure.aasce.aasce_angles_from_landmarks`) to the fitted corners, so angle 1
  is the largest mid-line angle between two vertebrae, ``angles.csv``'s own definition;
* optionally from **predicted** label maps of an 18-class checkpoint (``checkpoint=``), on the
  checkpoint's held-out test patients (or ``split=all``); every row then uses those images only;
* optionally from **predicted binary masks** of a binary checkpoint trained on the same split
  (``binary_checkpoint=``), measured by the clinical layer's two tilt methods;
* optionally from an **oracle at model resolution** (``oracle=256x128``): the ground-truth
  label map letterboxed to the model's input size (as the training target is) and mapped back
  exactly as a prediction is (:func:`r2mfnet.inference.predictions.labels_from_probabilities` on its
  one-hot map). A perfect model at that input size can do no better, so this row is the floor of
  the predicted-label error due to resolution alone.

Both ground-truth rows measure the same images from the same expert landmarks; the difference
is only what the measurement is allowed to know (the union of the vertebrae, or each vertebra
with its name). Statistics: :func:`r2mfnet.measure.evaluate.angle_stats` (AASCE SMAPE over the
three angles, MAE / bias / max error / Pearson of angle 1) plus the SMAPE of angle 1 alone.
The clinical end-plate Cobb of the main curve (upper plate of the upper end vertebra to lower
plate of the lower one) is reported for information (``endplate_main``), not in the SMAPE.

Command (:mod:`r2mfnet.apps.vertebra_compare`)::

    python scripts/vertebra_compare.py out=outputs/vertebra_compare [every=4]
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from r2mfnet.errors import MeasurementError, R2MFNetError
from r2mfnet.evaluation.vertebra_metrics import VertebraMetric

log = logging.getLogger("r2mfnet.evaluation.vertebra_compare")

SOURCES = {
    "gt_mask/vertebrae": "binary GT mask, end plates of its parts (clinical layer)",
    "gt_mask/centreline": "binary GT mask, centreline (clinical layer)",
    "gt_labels/vertebra_level": "GT vertebra label map, named vertebrae (this module)",
    "pred_mask/vertebrae": "predicted binary mask, end plates of its parts (binary checkpoint)",
    "pred_mask/centreline": "predicted binary mask, centreline (binary checkpoint)",
    "pred_labels/vertebra_level": "predicted vertebra label map (18-class checkpoint)",
    "oracle_labels/vertebra_level": "GT labels through the model-size letterbox and back (perfect model)",
}


def labels_triple(labels: np.ndarray, image_height: int) -> tuple[list[float] | None, dict[str, Any]]:
    """``(angles.csv-rule triple, info)`` of one label map; ``(None, {"error": ...})`` on failure."""
    from r2mfnet.measure.aasce import aasce_angles_from_landmarks
    from r2mfnet.measure.vertebra_labels import measure_labels

    try:
        m = measure_labels(labels)
        corners = np.stack([v.corners for v in m.vertebrae])
        tri = [float(x) for x in aasce_angles_from_landmarks(corners, image_height)]
    except MeasurementError as exc:
        return None, {"error": str(exc)}
    main = m.main_curve
    return tri, {
        "missing": m.report.missing,
        "dropped": m.report.dropped,
        "endplate_main": float(m.main_angle),
        "main_curve": None if main is None else {k: main[k] for k in ("upper", "lower", "apex")},
    }


def oracle_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``labels`` letterboxed to ``size`` (the training target) and mapped back like a prediction."""
    from r2mfnet.data.labels import NUM_VERTEBRA_CLASSES, letterbox_labels
    from r2mfnet.data.preprocess import Letterbox
    from r2mfnet.inference.predictions import labels_from_probabilities

    tf = Letterbox(int(size[0]), int(size[1])).fit(labels.shape)
    small = letterbox_labels(tf, labels)
    onehot = (small[None] == np.arange(NUM_VERTEBRA_CLASSES)[:, None, None]).astype(np.float32)
    return labels_from_probabilities(onehot, tf)


def _stats(per_image: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    from r2mfnet.measure.evaluate import angle_stats, smape

    sel = [r for r in per_image if key in r["measured"]]
    if not sel:
        return None
    stats = angle_stats([r["measured"][key] for r in sel], [r["reference"] for r in sel])
    ok = [r for r in sel if r["measured"][key] is not None]
    stats["smape_main_pct"] = round(smape(np.array([r["measured"][key][0] for r in ok]),
                                          np.array([r["reference"][0] for r in ok])), 3) if ok else None
    if key.endswith("vertebra_level"):
        ep = [(r["info"][key]["endplate_main"], r["reference"][0]) for r in ok]
        stats["mae_endplate_main_deg"] = round(float(np.mean([abs(a - b) for a, b in ep])), 3) if ep else None
        stats["images_with_missing_levels"] = sum(1 for r in ok if r["info"][key].get("missing"))
    return {"source": key, "what": SOURCES[key], **stats}


def compare_spineweb16(
    manifest: str | Path,
    every: int = 1,
    limit: int | None = None,
    binary_methods: Sequence[str] = ("vertebrae", "centreline"),
    checkpoint: str | Path | None = None,
    split: str = "test",
    progress: bool = True,
    oracle_size: tuple[int, int] | None = None,
    binary_checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Measure every selected image each way; returns ``{"rows", "per_image", ...}``.

    With a ``checkpoint`` and ``split="test"``, *every* row is computed on that checkpoint's
    held-out images only, so that the rows compare. ``binary_checkpoint`` (a binary model trained
    on the same split) adds the clinical layer's measurement of its predicted masks: the side by
    side of binary-mask and vertebra-level measurement from predictions.
    """
    from r2mfnet.data.io import image_shape, read_image, read_mask
    from r2mfnet.data.labels import read_label_map
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.measure.evaluate import measure_triple

    records_all = load_manifest(manifest, check_images=False)
    records = [r for r in records_all if r.landmarks is not None][:: max(1, int(every))]
    if limit is not None:
        records = records[: int(limit)]
    predictor, pred_ids, pred_note = None, None, None
    if checkpoint is not None:
        from r2mfnet.inference.predictor import Predictor
        from r2mfnet.evaluation.held_out import checkpoint_test_case_ids

        predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
        if split == "test":
            pred_ids, pred_note = checkpoint_test_case_ids(Path(checkpoint), records_all, "spineweb16")
        else:
            pred_note = "all images (some may have been seen in training)"
    if pred_ids is not None:
        records = [r for r in records if r.case_id in pred_ids]
    binary_predictor = None
    if binary_checkpoint is not None:
        from r2mfnet.inference.predictor import Predictor

        binary_predictor = Predictor.from_checkpoint(binary_checkpoint, device="cpu")
    items = records
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(records, desc="SpineWeb16 binary vs vertebra-level", dynamic_ncols=True)
    per_image: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    segmentation = VertebraMetric()  # the 18-class checkpoint's per-vertebra Dice and identification
    for rec in items:
        lm = json.loads(Path(rec.landmarks).read_text(encoding="utf-8"))
        ref = lm.get("cobb_angles_deg")
        if ref is None:
            continue
        shape = image_shape(rec.image)
        row: dict[str, Any] = {"case_id": rec.case_id, "reference": [float(x) for x in ref],
                               "measured": {}, "info": {}}
        if rec.mask is not None:
            mask = read_mask(rec.mask)
            for m in binary_methods:
                t = time.perf_counter()
                tri, err = measure_triple(mask, m)
                seconds[f"gt_mask/{m}"] = seconds.get(f"gt_mask/{m}", 0.0) + time.perf_counter() - t
                row["measured"][f"gt_mask/{m}"] = tri
                if err:
                    row["info"][f"gt_mask/{m}"] = {"error": err}
        t = time.perf_counter()
        gt_labels = read_label_map(rec.landmarks, shape)
        tri, info = labels_triple(gt_labels, shape[0])
        seconds["gt_labels/vertebra_level"] = seconds.get("gt_labels/vertebra_level", 0.0) + time.perf_counter() - t
        row["measured"]["gt_labels/vertebra_level"] = tri
        row["info"]["gt_labels/vertebra_level"] = info
        if oracle_size is not None:
            tri, info = labels_triple(oracle_labels(gt_labels, oracle_size), shape[0])
            row["measured"]["oracle_labels/vertebra_level"] = tri
            row["info"]["oracle_labels/vertebra_level"] = info
        if binary_predictor is not None:
            pred_mask = binary_predictor.predict_mask(read_image(rec.image).array)
            for m in binary_methods:
                tri, err = measure_triple(pred_mask, m)
                row["measured"][f"pred_mask/{m}"] = tri
                if err:
                    row["info"][f"pred_mask/{m}"] = {"error": err}
        if predictor is not None:
            try:
                pred = predictor.predict_label_maps([read_image(rec.image).array])[0]
                segmentation.update(pred, gt_labels, rec.case_id, rec.view)
                tri, info = labels_triple(pred, shape[0])
            except R2MFNetError as exc:
                tri, info = None, {"error": str(exc)}
            row["measured"]["pred_labels/vertebra_level"] = tri
            row["info"]["pred_labels/vertebra_level"] = info
        per_image.append(row)
    rows = [s for s in (_stats(per_image, k) for k in SOURCES) if s is not None]
    return {
        "dataset": "spineweb16",
        "reference": "angles.csv (experts); angle 1 = largest angle between two vertebrae",
        "n_images": len(per_image),
        "every": int(every),
        "oracle_size": list(oracle_size) if oracle_size is not None else None,
        "predicted_on": pred_note,
        "seconds_per_image": {k: round(v / max(1, len(per_image)), 3) for k, v in seconds.items()},
        "rows": rows,
        "segmentation": segmentation.aggregate() if segmentation.rows() else None,
        "per_image": per_image,
    }


def to_markdown(result: dict[str, Any]) -> str:
    def f(v: Any, nd: int = 2) -> str:
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"

    lines = [
        f"SpineWeb16, {result['n_images']} images (every {result['every']}), reference {result['reference']}.",
        "",
        "| source | n | failed | SMAPE angle 1 (%) | MAE angle 1 (deg) | bias (deg) | max err (deg) | r | SMAPE 3 angles (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['what']} | {r['n']} | {r['n_failed']} | {f(r.get('smape_main_pct'))} | {f(r.get('mae_main_deg'))} "
            f"| {f(r.get('bias_main_deg'))} | {f(r.get('max_abs_main_deg'))} | {f(r.get('pearson_main'), 3)} "
            f"| {f(r.get('smape_pct'))} |"
        )
    seg = result.get("segmentation")
    if seg:
        lines += ["", f"Predicted label maps ({seg['n_images']} images): mean per-vertebra Dice "
                  f"{f(seg['mean_dice'], 3)}, identification rate {f(seg['identification_rate'], 3)} "
                  f"({seg['n_vertebrae']} ground-truth vertebrae); Dice per level: "
                  + ", ".join(f"{k} {f(v)}" for k, v in seg["dice_per_level"].items()) + "."]
    extra = [r for r in result["rows"] if "mae_endplate_main_deg" in r]
    for r in extra:
        lines.append("")
        lines.append(
            f"{r['source']}: clinical end-plate Cobb of the main curve vs angles.csv angle 1: MAE "
            f"{f(r['mae_endplate_main_deg'])} deg; images with a missing level after cleaning: "
            f"{r['images_with_missing_levels']}."
        )
    return "\n".join(lines) + "\n"
