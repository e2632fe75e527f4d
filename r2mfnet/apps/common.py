"""What several applications need from their config: a predictor, a required value, a path."""
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
    """A :class:`~r2mfnet.inference.predictor.Predictor` from ``checkpoint`` (default
    ``cfg.checkpoint``) with the config's ``tta_flip``, ``device``, ``threshold`` and mask clean-up
    (``postprocess``, ``cleanup``; :mod:`r2mfnet.inference.postprocess`).

    One function because every application that predicts (predict, evaluate, evaluate_cobb,
    vertebra_compare) reads the same four keys with the same meaning.
    """
    from r2mfnet.inference.predictor import Predictor

    path = checkpoint if checkpoint is not None else required(
        cfg, "checkpoint", "a best.pt written by scripts/train.py")
    return Predictor.from_checkpoint(
        str(path), tta_flip=bool(cfg.get("tta_flip", False)), device=cfg.get("device"),
        threshold=float(cfg.get("threshold", 0.5)),
        postprocess=bool(cfg.get("postprocess", True)), cleanup=cfg.get("cleanup"))


def command_line(name: str) -> str:
    """The command as typed (``python scripts/x.py k=v ...``), written into result files."""
    import shlex
    import sys

    return f"python scripts/{name}.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
