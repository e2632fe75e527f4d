"""Train a model: ``python scripts/train.py [experiment=...] [model=...] [key=value ...]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.train` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.train import main

if __name__ == "__main__":
    main()
