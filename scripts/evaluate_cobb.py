"""Cobb angles from masks against expert or known angles: ``python scripts/evaluate_cobb.py dataset=spineweb16|synthetic [checkpoint=PATH]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.evaluate_cobb` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.evaluate_cobb import main

if __name__ == "__main__":
    main()
