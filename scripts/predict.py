"""Predict spine masks for new radiographs, measure Cobb angles and flexibility, draw reports.

``python scripts/predict.py checkpoint=PATH input=FILE_OR_FOLDER_OR_MANIFEST output_dir=DIR
[tta_flip=true] [device=cpu|cuda] [threshold=0.5] [method=vertebrae|centreline]
[masks=predicted|manifest] [progress=false]``

Writes per case ``<view>_mask.png``, ``<view>_overlay.png``, ``measurements.json``,
``report.png``, and ``summary.json``/``summary.csv``. Exit code 0: all inputs processed; 1: some
inputs could not be read (reported, the rest processed); 2: the run could not start (bad
argument, checkpoint or manifest). Logic and rules: :mod:`r2mfnet.inference.predict`,
``docs/clinical.md``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r2mfnet.cli import run_guarded  # noqa: E402


def main(argv: list[str]) -> int:
    from r2mfnet.inference.predict import predict_from_cli

    return int(run_guarded(lambda: predict_from_cli(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
