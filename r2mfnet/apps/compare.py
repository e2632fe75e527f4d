"""``r2mfnet-compare`` / ``scripts/compare.py``: several models under one budget, resumably.

Root config ``configs/compare.yaml`` (the training config plus ``seeds``, ``models``, ``root``,
``table``, ``extra``). The runner is :mod:`r2mfnet.experiments.compare`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from r2mfnet.apps.common import command_line
from r2mfnet.cli import hydra_entry


def _experiment(cfg: DictConfig) -> str:
    """The chosen ``experiment=`` option (Hydra's choice; the composed content is not used)."""
    from hydra.core.hydra_config import HydraConfig

    choice = HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    return str(choice or "demo")


def run(cfg: DictConfig) -> str:
    """Train (or resume, or skip) every (model, seed); write and print the table."""
    from r2mfnet.experiments.compare import DEFAULT_MODELS, run_all, write_results

    logging.getLogger("r2mfnet").setLevel(logging.INFO)
    experiment = _experiment(cfg)
    models = list(cfg.models) if cfg.get("models") else list(DEFAULT_MODELS)
    root = Path(str(cfg.root or f"results/{experiment}"))
    extra = [str(o) for o in OmegaConf.to_container(cfg.extra)] if cfg.get("extra") else []
    run_all(experiment, root, models=models, seeds=[int(s) for s in cfg.seeds], extra=extra)
    text = write_results(root, Path(str(cfg.table or root / "results_table.md")),
                         command_line("compare"), models)
    print(text)
    return text


main = hydra_entry("compare", run)
