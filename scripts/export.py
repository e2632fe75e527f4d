"""Export a checkpoint to ONNX: ``python scripts/export.py checkpoint=PATH output_file=model.onnx``.

Thin on purpose: the command is :mod:`r2mfnet.apps.export` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.export import main

if __name__ == "__main__":
    main()
