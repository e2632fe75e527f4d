"""Train a model: ``python scripts/train.py [experiment=...] [model=...] [key=value ...]``.

Thin on purpose: Hydra composes ``configs/``, :func:`r2mfnet.training.run.train` does the work.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from r2mfnet.cli import run_guarded  # noqa: E402

if int(os.environ.get("RANK", "0")) > 0:  # under torchrun only rank 0 writes Hydra's config copy and log file
    sys.argv += [o for o in ("hydra.output_subdir=null", "hydra/job_logging=stdout")
                 if not any(a.startswith(o.split("=")[0] + "=") for a in sys.argv[1:])]


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from r2mfnet.training.run import train

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_guarded(lambda: train(cfg, run_dir), cleanup_dir=run_dir)


if __name__ == "__main__":
    main()
