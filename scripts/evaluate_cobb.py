"""Evaluate the Cobb angles measured from masks against expert or known angles.

``python scripts/evaluate_cobb.py dataset=spineweb16|synthetic [checkpoint=PATH] [key=value ...]``

Options: ``root=`` (SpineWeb16 folder), ``cache_dir=``, ``checkpoint=`` (adds predicted-mask
rows), ``split=test|all`` (SpineWeb16 predicted masks: the checkpoint's held-out patients, or
every image), ``methods=vertebrae,centreline``, ``every=K`` / ``limit=N`` (SpineWeb16 subset),
``num_cases=30 seed=1 image_height=512 image_width=256`` (synthetic data set, generated once),
``output_dir=`` (default ``outputs/measure_eval/<dataset>``), ``tta_flip=``, ``device=``,
``threshold=``, ``progress=``. Writes ``measure_eval.json`` and ``measure_eval.md``. Logic:
:mod:`r2mfnet.measure.evaluate`; definitions: ``docs/clinical.md``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r2mfnet.cli import run_guarded  # noqa: E402


def main(argv: list[str]) -> None:
    from r2mfnet.measure.evaluate import evaluate_cobb_from_cli

    run_guarded(lambda: evaluate_cobb_from_cli(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
