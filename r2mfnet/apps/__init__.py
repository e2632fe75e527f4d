"""The applications layer: one function of a composed config per command.

Each module holds one command's config schema (a dataclass built from the pieces of
:mod:`r2mfnet.apps.schema`; ``run`` starts by checking the composed config against it), its
``run(cfg)`` and its ``main`` console entry point (:func:`r2mfnet.cli.hydra_entry` with the
command's root config ``configs/<name>.yaml``);
``scripts/<name>.py`` and the ``r2mfnet-<name>`` console commands only call ``main``. The
domain packages below (data, models, inference, training, evaluation, measure, experiments,
benchmark) hold no command-line code and never import this package.
"""
