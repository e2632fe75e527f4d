"""The vertebra-level picture of docs/vertebrae.md: ``python scripts/vertebra_picture.py [output_file=FILE] [seed=2]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.vertebra_picture` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.vertebra_picture import main

if __name__ == "__main__":
    main()
