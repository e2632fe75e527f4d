"""Where the Hydra configs live, and composing one of them outside an entry point.

The configs stay in the repository's ``configs/`` folder (the README, the docs and every
experiment refer to files there) rather than inside the package. The package is installed with
``pip install -e .``, so ``configs/`` is found next to the imported ``r2mfnet/`` folder whether a
command starts from ``scripts/*.py`` or from an installed console command such as
``r2mfnet-predict``: both hand Hydra this one absolute path. ``R2MFNET_CONFIG_DIR`` points
elsewhere (a copy of the configs for a non-editable install, or an experiment's own tree).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from r2mfnet.errors import ConfigError

_DEFAULT = Path(__file__).resolve().parents[1] / "configs"


def config_dir() -> Path:
    """The Hydra config folder; a :class:`ConfigError` when it is not there."""
    path = Path(os.environ.get("R2MFNET_CONFIG_DIR") or _DEFAULT).resolve()
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"no Hydra configs at '{path}' (config.yaml missing): install from a "
                          "checkout with 'pip install -e .' or set R2MFNET_CONFIG_DIR")
    return path


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``config_name`` with ``overrides``, as its entry point would see it (minus ``hydra``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        # Called from inside a running entry point (r2mfnet-compare composes each run's training
        # config): Hydra is already set up on this same config folder and cannot be set up twice.
        return hydra_compose(config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))
