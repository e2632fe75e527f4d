"""Generate the synthetic data set: ``python scripts/make_synthetic.py output_dir=DIR num_cases=200 [contact_sheet=true]``.

Thin on purpose: the command is :mod:`r2mfnet.apps.make_synthetic` (also installed as a console command,
see pyproject.toml); ``--help`` lists its options, ``--cfg job`` prints the composed config.
"""
from r2mfnet.apps.make_synthetic import main

if __name__ == "__main__":
    main()
