"""``r2mfnet-evaluate-cobb`` / ``scripts/evaluate_cobb.py``: Cobb angles from masks vs references.

Root config ``configs/evaluate_cobb.yaml``. ``dataset=spineweb16`` (experts' ``angles.csv``) or
``synthetic`` (the generator's angles, a set generated once and cached); ``checkpoint=`` adds
predicted-mask rows (on the checkpoint's ``split``), ``ensemble=[...]`` averages further
checkpoints' probabilities with it (on SpineWeb16 with ``split=val|test`` each member is checked
to have trained on none of the evaluated images: it holds out the same ones, or trained on other data);
``budget=true`` gives the error budget of that checkpoint instead. Writes ``measure_eval.json``
and ``measure_eval.md`` (or ``cobb_budget.*`` and ``worst/``) into ``output_dir`` (default
``outputs/measure_eval/<dataset>``).
Harness: :mod:`r2mfnet.evaluation.cobb_harness`; statistics: :mod:`r2mfnet.measure.angle_stats`;
definitions: ``docs/clinical.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.common import command_line
from r2mfnet.apps.schema import CommandConfig, EnsemblePredictorKeys, OutputDirKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError
from r2mfnet.typed_config import image_size_field


@dataclass
class EvaluateCobbConfig(EnsemblePredictorKeys, OutputDirKeys, CommandConfig):
    """``configs/evaluate_cobb.yaml``'s keys and types (the values are the YAML's)."""

    RENAMED = {"image_height": "image_size", "image_width": "image_size"}
    dataset: str = MISSING
    root: Optional[str] = MISSING
    cache_dir: str = MISSING
    split: str = MISSING
    methods: Any = MISSING  # [vertebrae,centreline] or the quoted string 'vertebrae,centreline'
    merged_split: str = MISSING  # centreline | expected (r2mfnet.measure.vertebrae.MERGED_SPLITS)
    every: int = MISSING
    limit: Optional[int] = MISSING
    gt_at: Optional[List[int]] = image_size_field()
    budget: bool = MISSING
    worst: int = MISSING
    num_cases: int = MISSING
    seed: int = MISSING
    image_size: List[int] = image_size_field()
    progress: bool = MISSING
    corners: Optional[str] = MISSING


def _methods(value: Any) -> list[str]:
    """``methods=[vertebrae,centreline]`` or the quoted string ``'methods=vertebrae,centreline'``."""
    from r2mfnet.measure.case import METHODS

    methods = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m) for m in value]
    methods = [m for m in methods if m]
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"methods must be a non-empty subset of [{', '.join(METHODS)}], got {methods}")
    return methods


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate, write ``measure_eval.json`` / ``.md``, print the tables; return the result.

    With ``budget=true`` (SpineWeb16 and a checkpoint) the error budget instead:
    :mod:`r2mfnet.evaluation.cobb_budget`, written as ``cobb_budget.json`` / ``.md`` with the
    ten worst images' pictures. ``merged_split`` goes to every mask row's end-plate measurement
    (ground truth and predicted alike)."""
    from r2mfnet.inference import build_predictor
    from r2mfnet.measure.vertebrae import check_merged_split

    c = command_config(EvaluateCobbConfig, cfg)
    dataset = c.dataset
    if dataset not in ("spineweb16", "synthetic"):
        raise ConfigError(f"dataset must be spineweb16 or synthetic, got '{dataset}'")
    methods = _methods(c.methods)
    check_merged_split(c.merged_split)
    split = c.split
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split must be train, val, test or all, got '{split}'")
    cache = Path(c.cache_dir).expanduser()
    checkpoint = c.checkpoint
    if c.budget and (dataset != "spineweb16" or not checkpoint):
        raise ConfigError("budget=true needs dataset=spineweb16 and checkpoint=PATH")
    if c.ensemble and not checkpoint:
        raise ConfigError("ensemble= needs checkpoint=PATH: the members are averaged with it")
    if c.corners and (dataset != "spineweb16" or not checkpoint):
        raise ConfigError("corners= needs dataset=spineweb16 and checkpoint=PATH: it reads the tilts of "
                          "the predicted masks (with budget=true, of every mask row) from the radiograph")
    predictor = build_predictor(c) if checkpoint else None
    corners = _corner_refiner(c.corners) if c.corners else None
    out = Path(c.output_dir) if c.output_dir else Path("outputs") / "measure_eval" / dataset
    if dataset == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(c.root) if c.root else default_root()
        manifest = prepare_spineweb16(root, cache / "spineweb16")
        if checkpoint:  # the members must not have trained on the primary's held-out images
            from r2mfnet.evaluation.cobb_spineweb16 import check_ensemble_split

            check_ensemble_split(manifest, checkpoint, c.ensemble, split)
        if c.budget:
            return _budget(c, manifest, predictor, str(checkpoint), methods, out, corners)
        from r2mfnet.evaluation.cobb_spineweb16 import evaluate_spineweb16, spineweb16_markdown

        result = evaluate_spineweb16(
            manifest, root=root, predictor=predictor, checkpoint=checkpoint, split=split,
            methods=methods, every=c.every, limit=c.limit, progress=c.progress, gt_at=c.gt_at,
            merged_split=c.merged_split, corners=corners)
        markdown = spineweb16_markdown
    else:
        from r2mfnet.data.synthetic import ensure_dataset
        from r2mfnet.evaluation.cobb_synthetic import evaluate_synthetic, synthetic_markdown

        height, width = c.image_size
        manifest = ensure_dataset(cache / "synthetic", num_cases=c.num_cases, seed=c.seed,
                                  image_height=height, image_width=width)
        result = evaluate_synthetic(manifest, predictor=predictor, methods=methods, progress=c.progress,
                                    merged_split=c.merged_split)
        markdown = synthetic_markdown
    if checkpoint:
        result["checkpoint"] = str(checkpoint)
        result.update(_ensemble_record(c))
        if c.corners:
            result["corners"] = str(c.corners)
    from r2mfnet.evaluation.cobb_harness import write_report

    md = markdown(result)
    j, m = write_report(result, md, out, "measure_eval", command_line("evaluate_cobb"))
    print(md)
    print(f"written: {j} and {m}")
    return result


def _corner_refiner(path: str) -> Any:
    """The corner network of ``corners=`` (loaded as data only), with the kept settings."""
    from r2mfnet.inference.corner_refiner import CornerRefiner

    return CornerRefiner.from_file(path)


def _ensemble_record(c: EvaluateCobbConfig) -> dict[str, Any]:
    """``{"ensemble": [...]}`` for the written result when members are averaged with the
    checkpoint (nothing for one checkpoint, so its outputs stay as they were)."""
    return {"ensemble": [str(p) for p in c.ensemble]} if c.ensemble else {}


def _budget(c: EvaluateCobbConfig, manifest: Path, predictor: Any, checkpoint: str,
            methods: list[str], out: Path, corners: Any = None) -> dict[str, Any]:
    """``budget=true``: the error budget of one checkpoint on one split (docs/clinical.md);
    ``corners`` (a corner refiner or ``None``): every mask row's tilts read by it."""
    from r2mfnet.evaluation.cobb_harness import write_report
    from r2mfnet.evaluation.cobb_budget import budget_markdown, error_budget, write_worst_pictures

    size = c.gt_at or (predictor.letterbox.height, predictor.letterbox.width)
    result = error_budget(manifest, predictor, checkpoint, split=c.split, methods=methods,
                          input_size=size, every=c.every, limit=c.limit, progress=c.progress,
                          merged_split=c.merged_split, corners=corners)
    result.update(_ensemble_record(c))
    pictures = write_worst_pictures(result, predictor, out / "worst", n=c.worst, corners=corners)
    result["worst_pictures"] = [str(p.relative_to(out)) for p in pictures]
    md = budget_markdown(result)
    j, m = write_report(result, md, out, "cobb_budget", command_line("evaluate_cobb"))
    print(md)
    print(f"written: {j}, {m} and {len(pictures)} pictures in {out / 'worst'}")
    return result


main = hydra_entry("evaluate_cobb", run, renamed=EvaluateCobbConfig.RENAMED)
