"""Evaluate a checkpoint on held-out views at original resolution.

``python scripts/evaluate.py checkpoint=PATH [data=...] [split=test] [output_dir=...] [tta_flip=true]``

The data split is recomputed from the data config stored in the checkpoint (same patients held
out), unless ``data=`` names another data config or ``manifest=`` a CSV to evaluate whole.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r2mfnet.cli import run_guarded  # noqa: E402


def main(argv: list[str]) -> None:
    from r2mfnet.evaluation.cli import evaluate_from_cli

    run_guarded(lambda: evaluate_from_cli(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
