"""``r2mfnet-train`` / ``scripts/train.py``: train a model (root config ``configs/config.yaml``).

The run folder is Hydra's run folder (``hydra.run.dir``, default ``outputs/<name>/<date>``);
:func:`r2mfnet.training.run.train` does the work.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from omegaconf import DictConfig

from r2mfnet.cli import hydra_entry

CONFIG_NAME = "config"  # the train root keeps its historical name (tests, compare, docs use it)


def run(cfg: DictConfig) -> None:
    """Train in Hydra's run folder; evaluate ``best.pt`` on the held-out split when configured."""
    from hydra.core.hydra_config import HydraConfig

    from r2mfnet.training.run import train

    train(cfg, Path(HydraConfig.get().runtime.output_dir))


def _quiet_non_zero_ranks() -> None:
    """Under torchrun only rank 0 writes Hydra's config copy and log file into the run folder."""
    if int(os.environ.get("RANK", "0")) > 0:
        sys.argv += [o for o in ("hydra.output_subdir=null", "hydra/job_logging=stdout")
                     if not any(a.startswith(o.split("=")[0] + "=") for a in sys.argv[1:])]


_entry = hydra_entry(CONFIG_NAME, run, cleanup_run_dir=True)


def main() -> None:
    """Console entry point."""
    _quiet_non_zero_ranks()
    _entry()
