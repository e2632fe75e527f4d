"""SpineWeb16: binary-mask measurement vs vertebra-level measurement, against ``angles.csv``.

For every image of the prepared SpineWeb16 manifest (or every k-th, ``every=``) the experts'
three angles (``angles.csv``, stored in each landmarks JSON as ``cobb_angles_deg``) are compared
with the angles measured

* from the **binary** ground-truth mask by the clinical layer's two tilt methods
  (:func:`r2mfnet.measure.angle_stats.measure_triple`: ``vertebrae`` = end plates of the mask's
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
* optionally from an **oracle at model resolution** (``oracle=[256,128]``): the ground-truth
  label map letterboxed to the model's input size (as the training target is) and mapped back
  exactly as a prediction is (:func:`r2mfnet.inference.predictions.labels_from_probabilities` on its
  one-hot map). A perfect model at that input size can do no better, so this row is the floor of
  the predicted-label error due to resolution alone.

Both ground-truth rows measure the same images from the same expert landmarks; the difference
is only what the measurement is allowed to know (the union of the vertebrae, or each vertebra
with its name). Statistics: :func:`r2mfnet.measure.angle_stats.angle_stats` (AASCE SMAPE over the
three angles, MAE / bias / max error / Pearson of angle 1) plus the SMAPE of angle 1 alone.
The clinical end-plate Cobb of the main curve (upper plate of the upper end vertebra to lower
plate of the lower one) is reported for information (``endplate_main``), not in the SMAPE.

Command (:mod:`r2mfnet.apps.vertebra_compare`)::

    python scripts/vertebra_compare.py output_dir=outputs/vertebra_compare [every=4]
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from r2mfnet.evaluation.vertebra_metrics import VertebraMetric

log = logging.getLogger("r2mfnet.evaluation.binary_vs_labels")

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
    """``(angles.csv-rule triple, info)`` of one label map (:func:`r2mfnet.evaluation.cobb_harness.
    measure_labels_triple`); ``(None, {"error": ...})`` on failure."""
    from r2mfnet.evaluation.cobb_harness import measure_labels_triple

    return measure_labels_triple(labels, image_height)


def oracle_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``labels`` letterboxed to ``size`` (the training target) and mapped back like a prediction."""
    from r2mfnet.data.labels import NUM_VERTEBRA_CLASSES, letterbox_labels
    from r2mfnet.data.preprocess import Letterbox
    from r2mfnet.inference.predictions import labels_from_probabilities

    tf = Letterbox(int(size[0]), int(size[1])).fit(labels.shape)
    small = letterbox_labels(tf, labels)
    onehot = (small[None] == np.arange(NUM_VERTEBRA_CLASSES)[:, None, None]).astype(np.float32)
    return labels_from_probabilities(onehot, tf)


def _with_label_extras(row: dict[str, Any], per_image: list[dict[str, Any]]) -> dict[str, Any]:
    """A statistics row named by :data:`SOURCES`; label-map rows also get the clinical end-plate
    MAE of the main curve and the count of images with a missing level."""
    key = row["source"]
    row = {**row, "what": SOURCES.get(key, row["what"])}
    if key.endswith("vertebra_level"):
        ok = [r for r in per_image if r["measured"].get(key) is not None]
        ep = [abs(r["info"][key]["endplate_main"] - r["reference"][0]) for r in ok]
        row["mae_endplate_main_deg"] = float(np.mean(ep)) if ep else None
        row["images_with_missing_levels"] = sum(1 for r in ok if r["info"][key].get("missing"))
    return row


def _sources(oracle_size: tuple[int, int] | None, binary_predictor: Any, predictor: Any,
             segmentation: VertebraMetric) -> list[Any]:
    """The comparison's mask sources (:class:`r2mfnet.evaluation.cobb_harness.Source`), in row order."""
    from r2mfnet.evaluation.cobb_harness import Source
    from r2mfnet.evaluation.cobb_spineweb16 import gt_labels, gt_mask, predicted_mask, raw_image

    sources = [Source("gt_mask", "mask", gt_mask), Source("gt_labels", "labels", gt_labels)]
    if oracle_size is not None:
        sources.append(Source("oracle_labels", "labels",
                              lambda image, memo: oracle_labels(gt_labels(image, memo), oracle_size)))
    if binary_predictor is not None:
        sources.append(Source("pred_mask", "mask", predicted_mask(binary_predictor)))
    if predictor is not None:
        def predicted_labels(image: Any, memo: dict) -> np.ndarray:
            pred = predictor.predict_label_maps([raw_image(image, memo)])[0]
            segmentation.update(pred, gt_labels(image, memo), image.case_id, image.view)
            return pred

        sources.append(Source("pred_labels", "labels", predicted_labels))
    return sources


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
    predictor: Any = None,
    binary_predictor: Any = None,
) -> dict[str, Any]:
    """Measure every selected image each way; returns ``{"rows", "per_image", ...}``.

    With a ``checkpoint`` and ``split="test"``, *every* row is computed on that checkpoint's
    held-out images only, so that the rows compare. ``binary_checkpoint`` (a binary model trained
    on the same split) adds the clinical layer's measurement of its predicted masks: the side by
    side of binary-mask and vertebra-level measurement from predictions. The loop is
    :func:`r2mfnet.evaluation.cobb_harness.evaluate_sources`. ``predictor`` / ``binary_predictor``:
    the two checkpoints' predictors when the caller built them
    (:func:`r2mfnet.inference.build_predictor` with its threshold, clean-up, device); otherwise
    they are built from the checkpoints with the predictor defaults on the CPU.
    """
    from r2mfnet.evaluation.cobb_harness import evaluate_sources, source_rows
    from r2mfnet.evaluation.cobb_spineweb16 import spineweb16_images
    from r2mfnet.inference import build_predictor

    # checkpoints first: a refused file stops the run before any image is read
    if predictor is None and checkpoint is not None:
        predictor = build_predictor(checkpoint=str(checkpoint), device="cpu")
    if binary_predictor is None and binary_checkpoint is not None:
        binary_predictor = build_predictor(checkpoint=str(binary_checkpoint), device="cpu")
    images, pred_note = spineweb16_images(manifest, every, limit, checkpoint,
                                          split if checkpoint is not None else "all")
    segmentation = VertebraMetric()  # the 18-class checkpoint's per-vertebra Dice and identification
    sources = _sources(oracle_size, binary_predictor, predictor, segmentation)
    done = evaluate_sources(images, sources, binary_methods, progress, "SpineWeb16 binary vs vertebra-level")
    per_image = done["per_image"]
    rows = [_with_label_extras(r, per_image) for r in source_rows(per_image, done["keys"], sources)]
    return {
        "dataset": "spineweb16",
        "reference": "angles.csv (experts); angle 1 = largest angle between two vertebrae",
        "n_images": len(per_image),
        "every": int(every),
        "oracle_size": list(oracle_size) if oracle_size is not None else None,
        "predicted_on": pred_note,
        "seconds_per_image": done["seconds_per_image"],
        "rows": rows,
        "segmentation": segmentation.aggregate() if segmentation.rows() else None,
        "per_image": per_image,
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The comparison's table (:func:`r2mfnet.evaluation.cobb_harness.rows_markdown`) and notes."""
    from r2mfnet.evaluation.cobb_harness import rows_markdown

    def f(v: Any, nd: int = 2) -> str:
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"

    lines = [f"SpineWeb16, {result['n_images']} images (every {result['every']}), reference {result['reference']}.",
             "", rows_markdown(result["rows"])]
    seg = result.get("segmentation")
    if seg:
        lines += ["", f"Predicted label maps ({seg['n_images']} images): mean per-vertebra Dice "
                  f"{f(seg['mean_dice'], 3)}, identification rate {f(seg['identification_rate'], 3)} "
                  f"({seg['n_vertebrae']} ground-truth vertebrae); Dice per level: "
                  + ", ".join(f"{k} {f(v)}" for k, v in seg["dice_per_level"].items()) + "."]
    for r in (r for r in result["rows"] if "mae_endplate_main_deg" in r):
        lines += ["", f"{r['source']}: clinical end-plate Cobb of the main curve vs angles.csv angle 1: MAE "
                  f"{f(r['mae_endplate_main_deg'])} deg; images with a missing level after cleaning: "
                  f"{r['images_with_missing_levels']}."]
    return "\n".join(lines) + "\n"
