"""Helpers shared by the end-to-end tests: compose the real configs with tiny overrides."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"


def compose_config(overrides: list[str]) -> DictConfig:
    """The run config exactly as ``scripts/train.py`` would see it (minus Hydra's own keys)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def tiny_overrides(cache_dir: Path, *extra: str) -> list[str]:
    """The smoke experiment, quiet, with its data cached under ``cache_dir``."""
    return ["experiment=smoke", f"data.cache_dir={cache_dir}", "trainer.progress=false", *extra]


def run_script(script: str, args: list[str], cwd: Path = ROOT, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(ROOT)}
    env.update(kw.pop("env", {}))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw,
    )
