"""``r2mfnet-vertebra-compare`` / ``scripts/vertebra_compare.py``: binary vs vertebra-level angles.

Root config ``configs/vertebra_compare.yaml``; the comparison is
:func:`r2mfnet.evaluation.vertebra_compare.compare_spineweb16`. Writes ``result.json`` and
``summary.md`` (with the command) into ``out`` and prints the table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from r2mfnet.apps.common import command_line
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def _oracle(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = (int(v) for v in str(value).lower().split("x"))
    except ValueError:
        raise ConfigError(f"oracle must be HxW, e.g. 256x128, got '{value}'") from None
    return h, w


def run(cfg: DictConfig) -> dict[str, Any]:
    """Compare, write ``result.json`` and ``summary.md``, print the table."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text
    from r2mfnet.evaluation.vertebra_compare import compare_spineweb16, to_markdown
    from r2mfnet.measure.evaluate import round_for_json

    split = str(cfg.split)
    if split not in ("test", "all"):
        raise ConfigError(f"split must be test or all, got '{split}'")
    result = compare_spineweb16(
        str(cfg.manifest), every=int(cfg.every), limit=None if cfg.limit is None else int(cfg.limit),
        checkpoint=cfg.checkpoint, split=split, progress=bool(cfg.progress),
        oracle_size=_oracle(cfg.oracle), binary_checkpoint=cfg.binary_checkpoint)
    out = Path(str(cfg.out))
    atomic_write_json(out / "result.json", round_for_json(result))
    md = to_markdown(result)
    atomic_write_text(out / "summary.md", md + f"\nCommand: `{command_line('vertebra_compare')}`\n")
    print(md)
    return result


main = hydra_entry("vertebra_compare", run)
