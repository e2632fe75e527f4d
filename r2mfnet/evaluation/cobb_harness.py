"""The one Cobb-angle evaluation: mask sources in, one table out.

Why
    Every question about the angles (how good are predicted masks, what does the input size
    cost, what is lost by merged vertebrae, binary masks vs vertebra label maps) is the same
    loop: for each image, get a mask (or label map, or landmarks) from some source, measure its
    three ``angles.csv``-rule angles, and compare with the reference. This module is that loop
    and its table; the SpineWeb16 harness (:mod:`r2mfnet.evaluation.cobb_spineweb16`), the
    vertebra-level comparison (:mod:`r2mfnet.evaluation.binary_vs_labels`), the synthetic
    harness (:mod:`r2mfnet.evaluation.cobb_synthetic`) and the error budget
    (:mod:`r2mfnet.evaluation.cobb_budget`) only differ in their images and sources.
Sources (:class:`Source`)
    ``kind="mask"``: a binary mask, measured by each tilt method (row key ``<name>/<method>``);
    ``"labels"``: a vertebra label map, measured by named vertebrae (``<name>/vertebra_level``);
    ``"angles"``: the triple itself (e.g. from landmarks; ``<name>``). A source's ``get(image,
    memo)`` may use the per-image ``memo`` dict to share work (the image read once, the
    prediction made once for all repaired variants). An :class:`~r2mfnet.errors.R2MFNetError` in
    ``get`` or in the measurement makes that row's angles ``None`` with the reason, never stops
    the run. ``merged_split`` (:func:`~r2mfnet.measure.vertebrae.vertebra_tilts`) applies to
    every ``"mask"`` source's end-plate measurement, ground truth and predicted alike (a
    source's own ``measure_kwargs`` come on top); a bad value stops the run before any image.
Statistics
    :func:`r2mfnet.measure.angle_stats.angle_stats` (AASCE SMAPE over the three angles, MAE / bias /
    max error / Pearson of angle 1, MAE of angles 2 and 3) and the SMAPE of angle 1 alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from r2mfnet.errors import MeasurementError, R2MFNetError

METHOD_LABELS = {"vertebrae": "end plates", "centreline": "centreline", "vertebra_level": "named vertebrae"}


@dataclass(frozen=True)
class Image:
    """One image to measure: where its files are and the reference angle triple."""

    case_id: str
    image: Path
    reference: tuple[float, ...]
    shape: tuple[int, int]
    mask: Path | None = None
    landmarks: Path | None = None
    view: str = "coronal"


@dataclass(frozen=True)
class Source:
    """Where a row's masks come from (see the module docstring for ``kind``)."""

    name: str
    kind: str
    get: Callable[[Image, dict], Any]
    label: str = ""
    measure_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per tilt method, keywords for the measurement (``{"vertebrae": {"anatomy": False}}``)."""
    refine: Callable[[Image, dict], Callable] | None = None
    """``(image, memo) -> refine`` of the end-plate method for this image
    (:func:`~r2mfnet.measure.vertebrae.cobb_from_mask_vertebrae`'s ``refine``: e.g. the corner
    network reading the tilts from the radiograph); ``None``: the masks' own tilts."""


def measure_labels_triple(labels: np.ndarray, image_height: int) -> tuple[list[float] | None, dict[str, Any]]:
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


def measure_source(source: Source, image: Image, memo: dict, methods: Sequence[str],
                   merged_split: str = "centreline"
                   ) -> dict[str, tuple[list[float] | None, dict[str, Any]]]:
    """``{row key: (triple or None, info)}`` of one source on one image; a mask source is
    measured with ``merged_split`` (end-plate method) and its own ``measure_kwargs``."""
    from r2mfnet.measure.angle_stats import measure_triple_info
    from r2mfnet.measure.case import method_kwargs

    keys = ([f"{source.name}/{m}" for m in methods] if source.kind == "mask"
            else [f"{source.name}/vertebra_level"] if source.kind == "labels" else [source.name])
    try:
        value = source.get(image, memo)
    except R2MFNetError as exc:
        return {k: (None, {"error": str(exc)}) for k in keys}
    if value is None:  # the source does not apply to this image (e.g. no label file)
        return {}
    if source.kind == "angles":
        return {keys[0]: ([float(x) for x in value], {})}
    if source.kind == "labels":
        return {keys[0]: measure_labels_triple(np.asarray(value), image.shape[0])}
    out = {}
    for key, method in zip(keys, methods):
        extra = ({"refine": source.refine(image, memo)}
                 if source.refine is not None and method == "vertebrae" else {})
        out[key] = measure_triple_info(np.asarray(value, dtype=bool), method,
                                       **{**method_kwargs(method, merged_split),
                                          **source.measure_kwargs.get(method, {}), **extra})
    return out


def progress_bar(items: Sequence[Any], desc: str, enabled: bool) -> Iterable[Any]:
    if not enabled or len(items) < 2:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, dynamic_ncols=True)


def evaluate_sources(images: Sequence[Image], sources: Sequence[Source],
                     methods: Sequence[str] = ("vertebrae",), progress: bool = False,
                     desc: str = "Cobb angles",
                     per_image_extra: Callable[[Image, dict], Mapping[str, Any]] | None = None,
                     merged_split: str = "centreline",
                     ) -> dict[str, Any]:
    """Measure every source on every image; return ``{"per_image", "keys", "seconds_per_image"}``.

    A per-image row is ``{"case_id", "reference", "measured": {key: triple | None},
    "info": {key: {...}}, "errors": {key: reason}}`` plus whatever ``per_image_extra(image,
    memo)`` adds (run after the sources, so it can use their memo: e.g. the Dice of the
    prediction). ``keys`` lists the row keys in the order first seen. ``merged_split``: the
    module docstring (checked here, before the first image).
    """
    from r2mfnet.measure.vertebrae import check_merged_split

    check_merged_split(merged_split)
    per_image: list[dict[str, Any]] = []
    keys: list[str] = []
    seconds: dict[str, float] = {}
    for image in progress_bar(images, desc, progress):
        memo: dict = {}
        row: dict[str, Any] = {"case_id": image.case_id, "reference": [float(x) for x in image.reference],
                               "measured": {}, "info": {}, "errors": {}}
        for source in sources:
            t = time.perf_counter()
            for key, (tri, info) in measure_source(source, image, memo, methods, merged_split).items():
                row["measured"][key] = tri
                row["info"][key] = info
                if info.get("error"):
                    row["errors"][key] = info["error"]
                if key not in keys:
                    keys.append(key)
            seconds[source.name] = seconds.get(source.name, 0.0) + time.perf_counter() - t
        if per_image_extra is not None:
            row.update(per_image_extra(image, memo))
        per_image.append(row)
    n = max(1, len(per_image))
    return {"per_image": per_image, "keys": keys,
            "seconds_per_image": {k: round(v / n, 3) for k, v in seconds.items()}}


def describe(key: str, sources: Sequence[Source]) -> str:
    """A row key's words for the table: the source's label and the tilt method."""
    name, _, method = key.partition("/")
    label = next((s.label for s in sources if s.name == name and s.label), name)
    return f"{label}, {METHOD_LABELS.get(method, method)}" if method else label


def source_rows(per_image: Sequence[Mapping[str, Any]], keys: Sequence[str],
                sources: Sequence[Source] = ()) -> list[dict[str, Any]]:
    """One statistics row per key (on the images where the key was measured or failed)."""
    from r2mfnet.measure.angle_stats import angle_stats, smape

    rows = []
    for key in keys:
        sel = [r for r in per_image if key in r["measured"]]
        if not sel:
            continue
        stats = angle_stats([r["measured"][key] for r in sel], [r["reference"] for r in sel])
        ok = [r for r in sel if r["measured"][key] is not None]
        stats["smape_main_pct"] = (smape(np.array([r["measured"][key][0] for r in ok]),
                                         np.array([r["reference"][0] for r in ok])) if ok else float("nan"))
        stats["n_chain_rebuilt"] = sum(bool(r.get("info", {}).get(key, {}).get("chain_rebuilt")) for r in ok)
        rows.append({"source": key, "what": describe(key, sources), **stats})
    return rows


def _f(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


TABLE_HEADER = ("| angles from | n | failed | SMAPE 3 angles (%) | SMAPE angle 1 (%) | MAE angle 1 (deg) | "
                "bias (deg) | max err (deg) | r | MAE angle 2 | MAE angle 3 |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|")


def rows_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The one table of every Cobb evaluation (one line per source row). ``failed`` also counts,
    in brackets, the images measured on a rebuilt chain of parts (their spine mask was broken for
    the usual rule: :func:`~r2mfnet.measure.centreline.select_chain`)."""
    lines = [TABLE_HEADER]
    for r in rows:
        rebuilt = r.get("n_chain_rebuilt") or 0
        failed = f"{r['n_failed']} ({rebuilt} rebuilt)" if rebuilt else f"{r['n_failed']}"
        lines.append(
            f"| {r.get('what') or r['source']} | {r['n']} | {failed} | {_f(r.get('smape_pct'))} | "
            f"{_f(r.get('smape_main_pct'))} | {_f(r.get('mae_main_deg'))} | {_f(r.get('bias_main_deg'))} | "
            f"{_f(r.get('max_abs_main_deg'), 1)} | {_f(r.get('pearson_main'), 3)} | "
            f"{_f(r.get('mae_angle2_deg'))} | {_f(r.get('mae_angle3_deg'))} |")
    return "\n".join(lines)


def merged_split_words(result: Mapping[str, Any]) -> str:
    """``"; end plates: merged_split=<value>"`` for a report's first line (empty when the
    result does not record it: results written before the setting existed)."""
    value = result.get("merged_split")
    return f"; end plates: merged_split={value}" if value else ""


def ensemble_words(result: Mapping[str, Any]) -> str:
    """``"; ensemble: probabilities averaged with b.pt, c.pt"``, put right after a report's
    ``checkpoint a.pt`` so that the line names the primary too (empty for one checkpoint:
    ``result`` records ``ensemble`` only when there is one)."""
    members = result.get("ensemble") or []
    return f"; ensemble: probabilities averaged with {', '.join(map(str, members))}" if members else ""


def write_report(result: Mapping[str, Any], markdown: str, output_dir: str | Path, stem: str,
                 command: str | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (rounded, NaN as null, with the command) and ``<stem>.md``."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text
    from r2mfnet.measure.angle_stats import round_for_json

    out = Path(output_dir)
    payload = {"command": command, **result} if command else dict(result)
    j = atomic_write_json(out / f"{stem}.json", round_for_json(payload))
    md = (f"Command: `{command}`\n\n" if command else "") + markdown
    m = atomic_write_text(out / f"{stem}.md", md if md.endswith("\n") else md + "\n")
    return j, m
