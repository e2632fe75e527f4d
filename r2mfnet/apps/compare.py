"""``r2mfnet-compare`` / ``scripts/compare.py``: several models under one budget, resumably.

Root config ``configs/compare.yaml`` (the training config plus ``seeds``, ``models``, ``root``,
``output_file``, ``extra``, ...: :class:`CompareConfig`). The runner is :mod:`r2mfnet.experiments.comparison`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.common import command_line
from r2mfnet.apps.schema import CommandConfig, OutputFileKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.training.run_config import RunConfig


@dataclass
class CompareConfig(RunConfig, OutputFileKeys, CommandConfig):
    """``configs/compare.yaml``'s keys and types: the training config (:class:`RunConfig`, whose
    keys do not change: checkpoints and resumable runs store them) and the comparison's own."""

    RENAMED = {"table": "output_file"}
    seeds: List[int] = MISSING
    models: Optional[List[str]] = MISSING
    root: Optional[str] = MISSING
    extra: List[str] = MISSING
    train: bool = MISSING
    cobb: bool = MISSING
    per_model: Dict[str, List[str]] = MISSING  # model name -> its own training overrides
    reference: str = MISSING  # the paired tables' reference model (its seeds set the tables')


def _experiment(cfg: DictConfig) -> str:
    """The chosen ``experiment=`` option (Hydra's choice; the composed content is not used)."""
    from hydra.core.hydra_config import HydraConfig

    choice = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    return str(choice or "demo")


def _add_cobb(result_path: Path, cache_dir: Path, data_root: str | None) -> None:
    """Measure the main Cobb angle on the run's predicted test masks (end-plate and centreline
    methods, SpineWeb16's expert angles as reference) and store the rows in its ``result.json``
    as ``cobb_predicted``. Needs the run's ``checkpoints/best.pt``, so it runs right after
    training, in the session that trained it (checkpoints are not kept in git)."""
    from r2mfnet.evaluation.cobb_spineweb16 import evaluate_spineweb16
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
    from r2mfnet.experiments.comparison import DEFAULT_MODELS, RunSpec, run_all, write_results

    logging.getLogger("r2mfnet").setLevel(logging.INFO)
    c = command_config(CompareConfig, cfg)
    experiment = _experiment(cfg)
    models = list(c.models) if c.models else list(DEFAULT_MODELS)
    root = Path(c.root or f"results/{experiment}")
    for seed in c.seeds if c.train else []:  # seed by seed, so that a session's end leaves whole seeds behind
        for model in models:
            run_all(experiment, root, models=[model], seeds=[seed], extra=c.extra, per_model=c.per_model)
            if c.cobb and c.data.source == "spineweb16":
                _add_cobb(root / RunSpec(model, seed).key / "result.json", Path(c.data.cache_dir), c.data.root)
    text = write_results(root, Path(c.output_file) if c.output_file else root / "results_table.md",
                         command_line("compare"), models, reference=c.reference)
    print(text)
    return text


main = hydra_entry("compare", run, renamed=CompareConfig.RENAMED)
