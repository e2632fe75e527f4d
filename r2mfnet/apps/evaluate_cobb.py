"""``r2mfnet-evaluate-cobb`` / ``scripts/evaluate_cobb.py``: Cobb angles from masks vs references.

Root config ``configs/evaluate_cobb.yaml``. ``dataset=spineweb16`` (experts' ``angles.csv``) or
``synthetic`` (the generator's angles, a set generated once and cached); ``checkpoint=`` adds
predicted-mask rows (on the checkpoint's ``split``); ``budget=true`` gives the error budget of
that checkpoint instead. Writes ``measure_eval.json`` and ``measure_eval.md`` (or
``cobb_budget.*`` and ``worst/``) into ``output_dir`` (default ``outputs/measure_eval/<dataset>``).
Harness: :mod:`r2mfnet.evaluation.cobb`; statistics: :mod:`r2mfnet.measure.evaluate`;
definitions: ``docs/clinical.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from r2mfnet.apps.common import build_predictor, command_line
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def _methods(value: Any) -> list[str]:
    """``methods=[vertebrae,centreline]`` or the quoted string ``'methods=vertebrae,centreline'``."""
    from r2mfnet.measure.case import METHODS

    methods = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m) for m in value]
    methods = [m for m in methods if m]
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"methods must be a non-empty subset of [{', '.join(METHODS)}], got {methods}")
    return methods


def _size(value: Any) -> tuple[int, int] | None:
    """``gt_at=[H,W]``: two positive integers, or null."""
    if value is None:
        return None
    size = list(value) if not isinstance(value, (str, int)) else []
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in size):
        raise ConfigError(f"gt_at must be [height, width] (integers >= 8) or null, got {value!r}")
    return int(size[0]), int(size[1])


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate, write ``measure_eval.json`` / ``.md``, print the tables; return the result.

    With ``budget=true`` (SpineWeb16 and a checkpoint) the error budget instead:
    :mod:`r2mfnet.evaluation.cobb_budget`, written as ``cobb_budget.json`` / ``.md`` with the
    ten worst images' pictures."""
    dataset = str(cfg.dataset)
    if dataset not in ("spineweb16", "synthetic"):
        raise ConfigError(f"dataset must be spineweb16 or synthetic, got '{dataset}'")
    methods = _methods(cfg.methods)
    split = str(cfg.split)
    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split must be train, val, test or all, got '{split}'")
    cache = Path(str(cfg.cache_dir)).expanduser()
    checkpoint = cfg.get("checkpoint")
    if cfg.get("budget") and (dataset != "spineweb16" or not checkpoint):
        raise ConfigError("budget=true needs dataset=spineweb16 and checkpoint=PATH")
    predictor = build_predictor(cfg) if checkpoint else None
    out = Path(str(cfg.get("output_dir") or Path("outputs") / "measure_eval" / dataset))
    if dataset == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(str(cfg.root)) if cfg.get("root") else default_root()
        manifest = prepare_spineweb16(root, cache / "spineweb16")
        limit = None if cfg.get("limit") is None else int(cfg.limit)
        if cfg.get("budget"):
            return _budget(cfg, manifest, predictor, str(checkpoint), split, methods, limit, out)
        from r2mfnet.evaluation.cobb_spineweb16 import evaluate_spineweb16, spineweb16_markdown

        result = evaluate_spineweb16(
            manifest, root=root, predictor=predictor, checkpoint=checkpoint, split=split,
            methods=methods, every=int(cfg.every), limit=limit, progress=bool(cfg.progress),
            gt_at=_size(cfg.get("gt_at")))
        markdown = spineweb16_markdown
    else:
        from r2mfnet.data.synthetic import ensure_dataset
        from r2mfnet.evaluation.cobb_synthetic import evaluate_synthetic, synthetic_markdown

        manifest = ensure_dataset(cache / "synthetic", num_cases=int(cfg.num_cases), seed=int(cfg.seed),
                                  image_height=int(cfg.image_height), image_width=int(cfg.image_width))
        result = evaluate_synthetic(manifest, predictor=predictor, methods=methods,
                                    progress=bool(cfg.progress))
        markdown = synthetic_markdown
    if checkpoint:
        result["checkpoint"] = str(checkpoint)
    from r2mfnet.evaluation.cobb import write_report

    md = markdown(result)
    j, m = write_report(result, md, out, "measure_eval", command_line("evaluate_cobb"))
    print(md)
    print(f"written: {j} and {m}")
    return result


def _budget(cfg: DictConfig, manifest: Path, predictor: Any, checkpoint: str, split: str,
            methods: list[str], limit: int | None, out: Path) -> dict[str, Any]:
    """``budget=true``: the error budget of one checkpoint on one split (docs/clinical.md)."""
    from r2mfnet.evaluation.cobb import write_report
    from r2mfnet.evaluation.cobb_budget import budget_markdown, error_budget, write_worst_pictures

    size = _size(cfg.get("gt_at")) or (predictor.letterbox.height, predictor.letterbox.width)
    result = error_budget(manifest, predictor, checkpoint, split=split, methods=methods,
                          input_size=size, every=int(cfg.every), limit=limit, progress=bool(cfg.progress))
    pictures = write_worst_pictures(result, predictor, out / "worst", n=int(cfg.worst))
    result["worst_pictures"] = [str(p.relative_to(out)) for p in pictures]
    md = budget_markdown(result)
    j, m = write_report(result, md, out, "cobb_budget", command_line("evaluate_cobb"))
    print(md)
    print(f"written: {j}, {m} and {len(pictures)} pictures in {out / 'worst'}")
    return result


main = hydra_entry("evaluate_cobb", run)
