"""Compare models under one budget, resumably: ``python scripts/compare.py experiment=spineweb16 [seeds=[0,1]] [models=[r2mfnet,unet]]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.compare` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.compare import main

if __name__ == "__main__":
    main()
