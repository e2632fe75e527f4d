"""Benchmark models, switch combinations and the data pipeline: ``python scripts/benchmark.py [quick=true]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.benchmark` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.benchmark import main

if __name__ == "__main__":
    main()
