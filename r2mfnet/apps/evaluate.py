"""``r2mfnet-evaluate`` / ``scripts/evaluate.py``: score a checkpoint on held-out views.

Root config ``configs/evaluate.yaml``. The views are the checkpoint's own split, recomputed from
the data config stored in the checkpoint (the same patients held out), unless ``data=<name>``
selects a ``configs/data/`` option or ``manifest=`` a CSV to evaluate. The scoring and the result
files are :func:`r2mfnet.evaluation.score_views.evaluate_records`; the keys and their
types are :class:`EvaluateConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from r2mfnet.apps.schema import CommandConfig, OutputDirKeys, TorchPredictorKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


@dataclass
class EvaluateConfig(TorchPredictorKeys, OutputDirKeys, CommandConfig):
    """``configs/evaluate.yaml``'s keys and types (the values are the YAML's)."""

    split: str = MISSING
    data: Any = MISSING  # null, or a configs/data/ option's mapping (data=<name>)
    manifest: Optional[str] = MISSING
    tau: Optional[float] = MISSING
    tau_mm: Optional[float] = MISSING
    tau_height_fraction: float = MISSING
    worst_cases: int = MISSING
    progress: bool = MISSING


def data_config(given: Any, stored: dict[str, Any]) -> Any:
    """The typed data config: ``data=<name>`` (a full config, it has ``source``) or the
    checkpoint's stored one with any ``+data.<key>=value`` given on top."""
    from r2mfnet.data.build_datasets import DataConfig

    if given is not None and "source" in given:
        data = given
    else:
        if "data" not in stored:
            raise ConfigError("the checkpoint stores no data config: pass data=<name> or manifest=PATH")
        data = OmegaConf.merge(stored["data"], given or {})
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), data))


def _records(c: EvaluateConfig, stored: dict[str, Any]) -> list:
    from r2mfnet.data.build_datasets import load_splits
    from r2mfnet.data.manifest import load_manifest

    if c.manifest:
        records = load_manifest(Path(c.manifest))
        return records if c.split == "all" else [r for r in records if (r.split or c.split) == c.split]
    splits = load_splits(data_config(c.data, stored))
    if c.split == "all":
        return splits["train"] + splits["val"] + splits["test"]
    if c.split not in splits:
        raise ConfigError(f"split must be train, val, test or all, got '{c.split}'")
    return splits[c.split]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate, write the result files, print the summary tables; return the summary."""
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.evaluation.score_views import evaluate_records, print_summary
    from r2mfnet.inference import build_predictor

    c = command_config(EvaluateConfig, cfg)
    checkpoint = Path(str(c.checkpoint))
    state = load_checkpoint(checkpoint)
    records = _records(c, state.get("config", {}))
    default_out = (checkpoint.parent.parent / f"eval_{c.split}" if checkpoint.parent.name == "checkpoints"
                   else Path(f"eval_{c.split}"))
    output_dir = Path(c.output_dir) if c.output_dir else default_out
    predictor = build_predictor(c)
    summary = evaluate_records(
        predictor, records, output_dir, tau=c.tau, tau_mm=c.tau_mm,
        tau_height_fraction=c.tau_height_fraction, worst_cases=c.worst_cases, progress=c.progress,
    )
    print(f"\n{len(records)} views of split '{c.split}' evaluated; results in {output_dir}\n")
    print(print_summary(summary))
    return summary


main = hydra_entry("evaluate", run, renamed=EvaluateConfig.RENAMED)
