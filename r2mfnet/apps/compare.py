"""``r2mfnet-compare`` / ``scripts/compare.py``: several models under one budget, resumably.

Root config ``configs/compare.yaml`` (the training config plus ``seeds``, ``models``, ``root``,
``table``, ``extra``). The runner is :mod:`r2mfnet.experiments.compare`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from r2mfnet.apps.common import command_line
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def _experiment(cfg: DictConfig) -> str:
    """The chosen ``experiment=`` option (Hydra's choice; the composed content is not used)."""
    from hydra.core.hydra_config import HydraConfig

    choice = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    return str(choice or "demo")


def _per_model(cfg: DictConfig) -> dict[str, list[str]]:
    """``per_model``: model name -> its own training overrides (its share of the budget)."""
    raw = OmegaConf.to_container(cfg.per_model) if cfg.get("per_model") else {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ConfigError(f"per_model must map model names to lists of overrides, got {raw!r}")
    return {str(k): [str(o) for o in v] for k, v in raw.items()}


def _add_cobb(result_path: Path, cache_dir: Path, data_root: str | None) -> None:
    """Measure the main Cobb angle on the run's predicted test masks (end-plate and centreline
    methods, SpineWeb16's expert angles as reference) and store the rows in its ``result.json``
    as ``cobb_predicted``. Needs the run's ``checkpoints/best.pt``, so it runs right after
    training, in the session that trained it (checkpoints are not kept in git)."""
    from r2mfnet.apps.cobb_harness import evaluate_spineweb16
    from r2mfnet.atomic import atomic_write_json
    from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16
    from r2mfnet.inference import build_predictor

    result = json.loads(result_path.read_text())
    checkpoint = result_path.parent / "checkpoints" / "best.pt"
    if "cobb_predicted" in result or not checkpoint.is_file():
        return
    root = Path(data_root) if data_root else default_root()
    manifest = prepare_spineweb16(root, cache_dir / "spineweb16")
    measured = evaluate_spineweb16(manifest, root=root, predictor=build_predictor(checkpoint=str(checkpoint), device="cpu"),
                                   checkpoint=checkpoint, split="test", progress=False)
    result["cobb_predicted"] = [row for row in measured["rows"] if str(row["source"]).startswith("pred/")]
    atomic_write_json(result_path, result)


def run(cfg: DictConfig) -> str:
    """Train (or resume, or skip) every (model, seed); measure Cobb angles on SpineWeb16; write
    and print the tables. ``train=false`` only rebuilds the tables from the saved results."""
    from r2mfnet.experiments.compare import DEFAULT_MODELS, RunSpec, run_all, write_results

    logging.getLogger("r2mfnet").setLevel(logging.INFO)
    experiment = _experiment(cfg)
    models = list(cfg.models) if cfg.get("models") else list(DEFAULT_MODELS)
    root = Path(str(cfg.root or f"results/{experiment}"))
    extra = [str(o) for o in OmegaConf.to_container(cfg.extra)] if cfg.get("extra") else []
    per_model = _per_model(cfg)
    seeds = [int(s) for s in cfg.seeds]
    for seed in seeds if cfg.train else []:  # seed by seed, so that a session's end leaves whole seeds behind
        for model in models:
            run_all(experiment, root, models=[model], seeds=[seed], extra=extra, per_model=per_model)
            if cfg.cobb and cfg.data.source == "spineweb16":
                _add_cobb(root / RunSpec(model, seed).key / "result.json", Path(str(cfg.data.cache_dir)),
                          cfg.data.get("root"))
    text = write_results(root, Path(str(cfg.table or root / "results_table.md")),
                         command_line("compare"), models)
    print(text)
    return text


main = hydra_entry("compare", run)
