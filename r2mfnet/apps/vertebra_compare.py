"""``r2mfnet-vertebra-compare`` / ``scripts/vertebra_compare.py``: binary vs vertebra-level angles.

Root config ``configs/vertebra_compare.yaml``; the comparison is
:func:`r2mfnet.evaluation.binary_vs_labels.compare_spineweb16`. Writes ``result.json`` and
``summary.md`` (with the command) into ``output_dir`` and prints the table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.common import command_line
from r2mfnet.apps.schema import CommandConfig, OutputDirKeys, TorchPredictorKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError
from r2mfnet.typed_config import image_size_field


@dataclass
class VertebraCompareConfig(TorchPredictorKeys, OutputDirKeys, CommandConfig):
    """``configs/vertebra_compare.yaml``'s keys and types (the values are the YAML's). The
    predictor keys apply to both checkpoints (``checkpoint``: 18 classes; ``binary_checkpoint``)."""

    RENAMED = {"out": "output_dir"}
    manifest: str = MISSING
    every: int = MISSING
    limit: Optional[int] = MISSING
    binary_checkpoint: Optional[str] = MISSING
    split: str = MISSING
    oracle: Optional[List[int]] = image_size_field()
    progress: bool = MISSING


def run(cfg: DictConfig) -> dict[str, Any]:
    """Compare, write ``result.json`` and ``summary.md``, print the table."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text
    from r2mfnet.evaluation.binary_vs_labels import compare_spineweb16, to_markdown
    from r2mfnet.inference import build_predictor
    from r2mfnet.measure.angle_stats import round_for_json

    c = command_config(VertebraCompareConfig, cfg)
    if c.split not in ("test", "all"):
        raise ConfigError(f"split must be test or all, got '{c.split}'")
    if not c.output_dir:
        raise ConfigError("output_dir= is required (see --help)")
    # checkpoints first: a refused file stops the run before any image is read
    predictor = build_predictor(c) if c.checkpoint else None
    binary = build_predictor(c, checkpoint=c.binary_checkpoint) if c.binary_checkpoint else None
    result = compare_spineweb16(
        c.manifest, every=c.every, limit=c.limit, checkpoint=c.checkpoint, split=c.split,
        progress=c.progress, oracle_size=c.oracle, binary_checkpoint=c.binary_checkpoint,
        predictor=predictor, binary_predictor=binary)
    out = Path(c.output_dir)
    atomic_write_json(out / "result.json", round_for_json(result))
    md = to_markdown(result)
    atomic_write_text(out / "summary.md", md + f"\nCommand: `{command_line('vertebra_compare')}`\n")
    print(md)
    return result


main = hydra_entry("vertebra_compare", run, renamed=VertebraCompareConfig.RENAMED)
