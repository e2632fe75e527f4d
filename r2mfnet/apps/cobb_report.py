"""The Cobb-angle evaluation's files: ``measure_eval.md`` tables and ``measure_eval.json``."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from r2mfnet.measure.evaluate import round_for_json

METHOD_LABELS = {"vertebrae": "end plates", "centreline": "centreline"}


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
    j = atomic_write_json(out / "measure_eval.json", round_for_json(payload))
    md = to_markdown(result)
    if command:
        md = f"Command: `{command}`\n\n" + md
    m = atomic_write_text(out / "measure_eval.md", md)
    return j, m
