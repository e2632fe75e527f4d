"""SpineWeb16, binary-mask vs vertebra-level angles: ``python scripts/vertebra_compare.py ['oracle=[256,128]'] [output_dir=DIR]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.vertebra_compare` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.vertebra_compare import main

if __name__ == "__main__":
    main()
