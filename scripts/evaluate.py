"""Evaluate a checkpoint on held-out views at original resolution: ``python scripts/evaluate.py checkpoint=PATH [split=test] [output_dir=DIR] [tta_flip=true]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.evaluate` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.evaluate import main

if __name__ == "__main__":
    main()
