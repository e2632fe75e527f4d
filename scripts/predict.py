"""Predict masks, measure Cobb angles, write reports: ``python scripts/predict.py checkpoint=PATH input=FILE_OR_FOLDER_OR_MANIFEST output_dir=DIR``.

Thin on purpose: the command is :mod:`r2mfnet.apps.predict` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.predict import main

if __name__ == "__main__":
    main()
