"""What several applications need from their config: a predictor, a required value, the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from r2mfnet.errors import ConfigError


def required(cfg: DictConfig, key: str, hint: str = "") -> Any:
    """``cfg[key]``, or a ConfigError naming the key when it is missing, null or empty."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)  # "???" -> None
    if value is None or value == "":
        raise ConfigError(f"{key}= is required" + (f": {hint}" if hint else ""))
    return value


def build_predictor(cfg: DictConfig, checkpoint: str | Path | None = None) -> Any:
    """:func:`r2mfnet.inference.build_predictor` on this command's config (its predictor keys:
    ``checkpoint`` or ``backend=onnx`` with ``onnx_model``, ``tta_flip``, ``device``,
    ``threshold``, ``postprocess``, ``cleanup``); ``checkpoint`` replaces ``cfg.checkpoint``."""
    from r2mfnet.inference import build_predictor as build

    return build(cfg, **({"checkpoint": str(checkpoint)} if checkpoint is not None else {}))


def command_line(name: str) -> str:
    """The command as typed (``python scripts/x.py k=v ...``), written into result files."""
    import shlex
    import sys

    return f"python scripts/{name}.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
