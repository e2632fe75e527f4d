"""``r2mfnet-evaluate`` / ``scripts/evaluate.py``: score a checkpoint on held-out views.

Root config ``configs/evaluate.yaml``. The views are the checkpoint's own split, recomputed from
the data config stored in the checkpoint (the same patients held out), unless ``data=<name>``
selects a ``configs/data/`` option or ``manifest=`` a CSV to evaluate. The scoring and the result
files are :func:`r2mfnet.evaluation.evaluate.evaluate_records`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from r2mfnet.apps.common import build_predictor, required
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def data_config(cfg: DictConfig, stored: dict[str, Any]) -> Any:
    """The typed data config: ``data=<name>`` (a full config, it has ``source``) or the
    checkpoint's stored one with any ``+data.<key>=value`` given on top."""
    from r2mfnet.data.build import DataConfig

    given = cfg.get("data")
    if given is not None and "source" in given:
        data = given
    else:
        if "data" not in stored:
            raise ConfigError("the checkpoint stores no data config: pass data=<name> or manifest=PATH")
        data = OmegaConf.merge(stored["data"], given or {})
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), data))


def _records(cfg: DictConfig, stored: dict[str, Any], split: str) -> list:
    from r2mfnet.data.build import load_splits
    from r2mfnet.data.manifest import load_manifest

    if cfg.get("manifest"):
        records = load_manifest(Path(str(cfg.manifest)))
        return records if split == "all" else [r for r in records if (r.split or split) == split]
    splits = load_splits(data_config(cfg, stored))
    if split == "all":
        return splits["train"] + splits["val"] + splits["test"]
    if split not in splits:
        raise ConfigError(f"split must be train, val, test or all, got '{split}'")
    return splits[split]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate, write the result files, print the summary tables; return the summary."""
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.evaluation.evaluate import evaluate_records, print_summary

    checkpoint = Path(str(required(cfg, "checkpoint", "a best.pt written by scripts/train.py")))
    state = load_checkpoint(checkpoint)
    split = str(cfg.get("split", "test"))
    records = _records(cfg, state.get("config", {}), split)
    default_out = (checkpoint.parent.parent / f"eval_{split}" if checkpoint.parent.name == "checkpoints"
                   else Path(f"eval_{split}"))
    output_dir = Path(str(cfg.get("output_dir") or default_out))
    predictor = build_predictor(cfg, checkpoint)
    summary = evaluate_records(
        predictor, records, output_dir, tau=cfg.get("tau"), tau_mm=cfg.get("tau_mm", 2.5),
        tau_height_fraction=cfg.get("tau_height_fraction", 0.005), worst_cases=int(cfg.get("worst_cases", 4)),
        progress=bool(cfg.get("progress", True)),
    )
    print(f"\n{len(records)} views of split '{split}' evaluated; results in {output_dir}\n")
    print(print_summary(summary))
    return summary


main = hydra_entry("evaluate", run)
