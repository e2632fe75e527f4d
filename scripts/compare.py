"""Compare models under one budget: ``python scripts/compare.py experiment=spineweb16 [seeds=[0,1]]
[models=[r2mfnet,unet]] [root=results/spineweb16] [table=docs/results_table.md] [extra=[...]]``.

Resumable: run it again after an interruption and finished runs are skipped, half-finished ones
continue from their checkpoints.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r2mfnet.cli import run_guarded  # noqa: E402


def main(argv: list[str]) -> None:
    import logging

    from omegaconf import OmegaConf

    from r2mfnet.errors import ConfigError
    from r2mfnet.experiments.compare import DEFAULT_MODELS, run_all, write_results

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    args = OmegaConf.to_container(OmegaConf.from_cli(argv))
    known = {"experiment", "seeds", "models", "root", "table", "extra"}
    if set(args) - known:  # type: ignore[arg-type]
        raise ConfigError(f"unknown option(s) {sorted(set(args) - known)}; known: {sorted(known)}")  # type: ignore[arg-type]
    experiment = args.get("experiment", "spineweb16")
    models = list(args.get("models", DEFAULT_MODELS))
    root = Path(args.get("root", f"results/{experiment}"))
    run_all(experiment, root, models=models, seeds=list(args.get("seeds", [0])), extra=list(args.get("extra", [])))
    table = Path(args.get("table", root / "results_table.md"))
    print(write_results(root, table, "python scripts/compare.py " + " ".join(argv), models))


if __name__ == "__main__":
    run_guarded(lambda: main(sys.argv[1:]))
