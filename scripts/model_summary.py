"""Parameters and GFLOPs of every model: ``python scripts/model_summary.py ['image_size=[512,256]' step_time=true]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.model_summary` (also installed as a console
command, see pyproject.toml); ``--help`` lists its options.
"""
from r2mfnet.apps.model_summary import main

if __name__ == "__main__":
    main()
