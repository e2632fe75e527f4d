"""Train the corner network: ``python scripts/train_corners.py [split_from=SEG.pt] [output_file=corners.pt]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.train_corners` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.train_corners import main

if __name__ == "__main__":
    main()
