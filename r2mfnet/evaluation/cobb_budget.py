"""The error budget of the main Cobb angle: what each part of the pipeline costs (issue 23).

Why
    Angles from predicted masks are several times further from the experts' than angles from
    ground-truth masks; between the two lie the input size, the kinds of mask error and the way
    tilts are read. The budget measures one checkpoint on one split from these sources, on the
    same images (:mod:`r2mfnet.evaluation.cobb_harness`):

    ``gt``              ground-truth masks at full resolution (the measurement method's own error)
    ``gt@HxW``          ground truth letterboxed to the model's input size and back
    ``pred_no_rule``    predicted masks, end plates without the anatomical sanity rule
    ``pred``            predicted masks as ``r2mfnet-predict`` measures them
    ``pred_recipe``     ... predicted with the recipe's settings (threshold 0.5, no flip TTA),
                        when the run's differ: the "before" of a change of prediction settings
    ``pred-extra``      ... with the parts off the spine removed (:mod:`~r2mfnet.evaluation.cobb_repairs`)
    ``pred+split``      ... with merged vertebrae split along the ground truth's discs
    ``pred+missing``    ... with missed vertebrae painted in from the ground truth
    ``pred-extra+split``, ``pred_repaired`` (all three): the repairs in turn, cumulatively

    The **budget** is the chain gt -> gt@HxW -> pred_repaired -> pred-extra+split -> pred-extra
    -> pred, on the images every row could measure: consecutive differences of main-angle
    SMAPE (and MAE) are the shares of the method, the input size, the outlines (what no repair
    touches), missed vertebrae, merged vertebrae and extra parts; they add up to the predicted
    row by construction. Per image: the predicted row's error beside vertebra F1 and Dice, and
    the worst images as report pictures (:func:`write_worst_pictures`).

    With a corner refiner (``corners=``, :class:`~r2mfnet.inference.corner_refiner.CornerRefiner`)
    every mask row reads its tilts with it, as ``r2mfnet-predict corners=`` does, and one more row,
    ``pred_masks``, keeps the predicted masks' own tilts: the budget then says what remains once
    the corner network reads the tilts (the method row becomes the network's own error on perfect
    masks), and ``pred_masks`` -> ``pred`` is what the network gained.

    ``merged_split`` (:func:`~r2mfnet.measure.vertebrae.vertebra_tilts`) is used by every row's
    end-plate measurement (the harness's, ground truth and predicted alike) and by the worst
    images' pictures, and stated in the report: with ``"expected"`` the "merged vertebrae" share
    is what merged vertebrae still cost after the measurement cut them itself.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from r2mfnet.evaluation.cobb_harness import (Image, Source, ensemble_words, evaluate_sources,
                                             merged_split_words, rows_markdown, source_rows)
from r2mfnet.evaluation.cobb_repairs import missing_count, remove_extra_parts, restore_missing, split_merged
from r2mfnet.evaluation.cobb_spineweb16 import (corner_refine, gt_at_size, gt_labels, gt_mask, predicted_mask,
                                                 spineweb16_images)

if TYPE_CHECKING:  # only for the type hints: the refiner is loaded by the apps
    from r2mfnet.inference.corner_refiner import CornerRefiner

CHAIN = ("gt", "{size}", "pred_repaired", "pred-extra+split", "pred-extra", "pred")
"""The budget's chain of sources, from the best masks to the predicted ones."""
SHARES = ("measurement method on perfect masks", "input size (letterbox and back)",
          "outlines (what no repair touches)", "missed vertebrae", "merged vertebrae", "extra parts")
"""What each step of :data:`CHAIN` costs (the first: the ``gt`` row itself)."""
F1_BINS = (0.0, 0.6, 0.8, 0.9, 1.01)


RECIPE_SETTINGS = {"threshold": 0.5, "tta_flip": False}
"""The prediction settings of the training recipe's validation (and of the first budget)."""


def recipe_predictor(predictor: Any) -> Any | None:
    """A shallow copy of ``predictor`` (same model) with :data:`RECIPE_SETTINGS`, or ``None``
    when it already has them: the budget's "before" row for changed prediction settings."""
    import copy

    if all(getattr(predictor, k, v) == v for k, v in RECIPE_SETTINGS.items()):
        return None
    recipe = copy.copy(predictor)
    for key, value in RECIPE_SETTINGS.items():
        setattr(recipe, key, value)
    return recipe


def budget_sources(predictor: Any, input_size: Sequence[int],
                   corners: CornerRefiner | None = None) -> list[Source]:
    """The sources of the module docstring, sharing one prediction per image; with ``corners``
    every mask row's tilts read by the corner network, and ``pred_masks`` without it."""
    pred = predicted_mask(predictor)
    recipe = recipe_predictor(predictor)

    def repaired(*repairs: Any) -> Any:
        def get(image: Image, memo: dict) -> np.ndarray:
            mask = pred(image, memo)
            for repair in repairs:
                mask = repair(mask, gt_labels(image, memo))
            return mask
        return get

    sources = [
        Source("gt", "mask", gt_mask, "ground-truth masks"),
        gt_at_size(input_size),
        Source("pred_no_rule", "mask", pred, "predicted, no sanity rule", {"vertebrae": {"anatomy": False}}),
        *([Source("pred_recipe", "mask", predicted_mask(recipe, "pred_recipe_mask"),
                  "predicted, recipe settings (threshold 0.5, no flip TTA)")] if recipe is not None else []),
        Source("pred", "mask", pred, "predicted masks"),
        Source("pred-extra", "mask", repaired(remove_extra_parts), "predicted, extra parts removed"),
        Source("pred+split", "mask", repaired(split_merged), "predicted, merged vertebrae split"),
        Source("pred+missing", "mask", repaired(restore_missing), "predicted, missed vertebrae restored"),
        Source("pred-extra+split", "mask", repaired(remove_extra_parts, split_merged),
               "predicted, extra removed + merged split"),
        Source("pred_repaired", "mask", repaired(remove_extra_parts, split_merged, restore_missing),
               "predicted, all three repaired"),
    ]
    if corners is None:
        return sources
    refine = corner_refine(corners)
    return [Source("pred_masks", "mask", pred, "predicted masks, their own tilts (no corner network)"),
            *(replace(s, label=f"{s.label}, tilts from the corner network", refine=refine) for s in sources)]


def segmentation_of_prediction(image: Image, memo: dict) -> dict[str, Any]:
    """Per image: Dice and vertebra matching of the prediction (already in ``memo``)."""
    from r2mfnet.evaluation.metrics import dice
    from r2mfnet.evaluation.vertebra_f1 import vertebra_match

    pred, gt = memo.get("pred_mask"), memo.get("gt_mask")
    if pred is None or gt is None:
        return {}
    return {"image": str(image.image), "mask": str(image.mask), "dice": dice(pred, gt),
            **vertebra_match(pred, gt), "vertebrae_missing_levels": missing_count(pred, gt_labels(image, memo))}


def _budget_table(per_image: Sequence[dict[str, Any]], chain: Sequence[str], method: str) -> dict[str, Any]:
    """The chain's rows on the images every row measured, and the consecutive differences."""
    keys = [f"{name}/{method}" for name in chain]
    common = [r for r in per_image if all(r["measured"].get(k) is not None for k in keys)]
    rows = {row["source"]: row for row in source_rows(common, keys)}
    shares = []
    previous = {"smape_main_pct": 0.0, "mae_main_deg": 0.0, "smape_pct": 0.0}
    for key, what in zip(keys, SHARES):
        row = rows.get(key, {})
        shares.append({"share": what, "row": key,
                       **{k: row.get(k, float("nan")) - previous[k] for k in previous},
                       **{f"cumulative_{k}": row.get(k, float("nan")) for k in previous}})
        previous = {k: row.get(k, float("nan")) for k in previous}
    return {"method": method, "n_images": len(common), "n_left_out": len(per_image) - len(common),
            "shares": shares}


def _error_vs_segmentation(per_image: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Main-angle MAE and SMAPE of ``key`` per vertebra-F1 bin."""
    from r2mfnet.measure.angle_stats import smape

    out = []
    for lo, hi in zip(F1_BINS[:-1], F1_BINS[1:]):
        sel = [r for r in per_image if "vertebra_f1" in r and lo <= r["vertebra_f1"] < hi
               and r["measured"].get(key) is not None]
        err = [abs(r["measured"][key][0] - r["reference"][0]) for r in sel]
        out.append({"vertebra_f1": f"[{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}", "n": len(sel),
                    "mae_main_deg": float(np.mean(err)) if err else float("nan"),
                    "smape_main_pct": smape(np.array([r["measured"][key][0] for r in sel]),
                                            np.array([r["reference"][0] for r in sel])) if sel else float("nan"),
                    "mean_dice": float(np.mean([r["dice"] for r in sel])) if sel else float("nan")})
    return out


def error_budget(manifest: str | Path, predictor: Any, checkpoint: str | Path, split: str = "val",
                 methods: Sequence[str] = ("vertebrae",), input_size: Sequence[int] = (256, 128),
                 every: int = 1, limit: int | None = None, progress: bool = True,
                 merged_split: str = "centreline", corners: CornerRefiner | None = None) -> dict[str, Any]:
    """The budget of one checkpoint on its own ``split`` of SpineWeb16 (see the module doc);
    ``corners``: every mask row's tilts read by this corner network."""
    from r2mfnet.measure.vertebrae import check_merged_split

    check_merged_split(merged_split)  # before the images are listed
    images, note = spineweb16_images(manifest, every, limit, checkpoint, split)
    if corners is not None:
        corners.check_unseen([im.case_id for im in images], split)
    sources = budget_sources(predictor, input_size, corners)
    done = evaluate_sources(images, sources, methods, progress, f"error budget ({split})",
                            per_image_extra=segmentation_of_prediction, merged_split=merged_split)
    per_image = done["per_image"]
    size = f"gt@{int(input_size[0])}x{int(input_size[1])}"
    chain = [size if c == "{size}" else c for c in CHAIN]
    pred_key = f"pred/{methods[0]}"
    for r in per_image:
        tri = r["measured"].get(pred_key)
        r["pred_main_error_deg"] = None if tri is None else tri[0] - r["reference"][0]
    return {"dataset": "spineweb16", "split": split, "predicted_on": note, "checkpoint": str(checkpoint),
            "input_size": [int(input_size[0]), int(input_size[1])], "n_images": len(per_image),
            "prediction_settings": {k: getattr(predictor, k, None) for k in RECIPE_SETTINGS},
            "merged_split": merged_split,
            **({"corners": corners.name} if corners is not None else {}),
            "rows": source_rows(per_image, done["keys"], sources),
            "budget": [_budget_table(per_image, chain, m) for m in methods],
            "error_by_vertebra_f1": _error_vs_segmentation(per_image, pred_key),
            "seconds_per_image": done["seconds_per_image"], "per_image": per_image}


def _f(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def budget_markdown(result: dict[str, Any]) -> str:
    """The budget's tables: every source, the chain's shares, error by vertebra F1, worst images."""
    lines = [f"Error budget, SpineWeb16 {result['split']} split ({result['n_images']} images; "
             f"{result['predicted_on']}); checkpoint {result['checkpoint']}{ensemble_words(result)}; "
             f"prediction settings {result.get('prediction_settings')}{merged_split_words(result)}; "
             + (f"tilts read by the corner network {result['corners']} in every mask row but pred_masks; "
                if result.get("corners") else "")
             + "reference: experts' angles.csv.",
             "", rows_markdown(result["rows"])]
    for b in result["budget"]:
        lines += ["", f"Budget of the main angle ({b['method']}), on the {b['n_images']} images every row "
                  f"measured ({b['n_left_out']} left out): each row's share is its difference from the row above.",
                  "", "| share | row | SMAPE angle 1 (%) | cumulative | MAE angle 1 (deg) | cumulative | "
                  "SMAPE 3 angles (%) | cumulative |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {s['share']} | {s['row']} | {_f(s['smape_main_pct'])} | {_f(s['cumulative_smape_main_pct'])} | "
                  f"{_f(s['mae_main_deg'])} | {_f(s['cumulative_mae_main_deg'])} | {_f(s['smape_pct'])} | "
                  f"{_f(s['cumulative_smape_pct'])} |" for s in b["shares"]]
    lines += ["", "Predicted-mask main-angle error by the image's vertebra F1:", "",
              "| vertebra F1 | images | MAE angle 1 (deg) | SMAPE angle 1 (%) | mean Dice |", "|---|---|---|---|---|"]
    lines += [f"| {e['vertebra_f1']} | {e['n']} | {_f(e['mae_main_deg'])} | {_f(e['smape_main_pct'])} | "
              f"{_f(e['mean_dice'], 3)} |" for e in result["error_by_vertebra_f1"]]
    worst = worst_images(result, 10)
    if worst:
        lines += ["", "Worst images (predicted masks):", "",
                  "| image | experts (deg) | predicted (deg) | error | vertebra F1 | Dice | missed | merged | parts |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['case_id']} | {_f(r['reference'][0], 1)} | "
                  f"{_f(r['reference'][0] + r['pred_main_error_deg'], 1)} | {_f(r['pred_main_error_deg'], 1)} | "
                  f"{_f(r.get('vertebra_f1'))} | {_f(r.get('dice'), 3)} | {r.get('vertebrae_missed')} | "
                  f"{r.get('vertebrae_merged')} | {r.get('vertebrae_pred')} |" for r in worst]
    unmeasured = [r["case_id"] for r in result["per_image"] if r.get("pred_main_error_deg") is None]
    lines += ["", f"Unmeasurable with predicted masks: {len(unmeasured)}"
              + (f" ({', '.join(unmeasured)})" if unmeasured else "") + "."]
    return "\n".join(lines) + "\n"


def worst_images(result: dict[str, Any], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` images with the largest predicted main-angle error (measured ones)."""
    done = [r for r in result["per_image"] if r.get("pred_main_error_deg") is not None]
    return sorted(done, key=lambda r: -abs(r["pred_main_error_deg"]))[:n]


def write_worst_pictures(result: dict[str, Any], predictor: Any, folder: str | Path, n: int = 10,
                         height: int = 900, corners: CornerRefiner | None = None) -> list[Path]:
    """Report pictures of the ``n`` worst images: ground truth and prediction side by side,
    measured with the budget's ``merged_split`` (and its corner network, so that the angles
    drawn are the table's)."""
    from r2mfnet.data.io import read_image, read_mask
    from r2mfnet.data.preprocess import normalize_intensity
    from r2mfnet.measure.case import measure_view, method_kwargs
    from r2mfnet.measure.annotate import draw_measurement, side_by_side
    from r2mfnet.pictures import write_png

    kwargs = method_kwargs("vertebrae", result.get("merged_split", "centreline"))
    paths = []
    for rank, r in enumerate(worst_images(result, n), 1):
        raw = read_image(r["image"]).array
        image01 = normalize_intensity(raw)
        masks = {"ground truth": read_mask(r["mask"]),
                 "predicted": np.asarray(predictor.predict_mask(raw), dtype=bool)}
        refine = {} if corners is None else {"refine": corners.for_image(raw)}
        views = {name: measure_view("coronal", m, method="vertebrae", **kwargs, **refine)
                 for name, m in masks.items()}
        pictures = {name: draw_measurement(image01, masks[name], v.centreline, v.cobb, error=v.error)
                    for name, v in views.items()}
        title = (f"{r['case_id']} | experts {r['reference'][0]:.1f} deg | predicted "
                 f"{r['reference'][0] + r['pred_main_error_deg']:.1f} deg | vertebra F1 "
                 f"{r.get('vertebra_f1', float('nan')):.2f} | Dice {r.get('dice', float('nan')):.3f}")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in r["case_id"])
        paths.append(write_png(Path(folder) / f"{rank:02d}_{safe}.png", side_by_side(pictures, title, height)))
    return paths
