"""Where the Hydra configs live, and composing one of them outside an entry point.

The configs stay in the repository's top-level ``configs/`` folder (the README, the docs and
every experiment refer to files there). The build copies that folder into the package
(``setup.py`` maps the package ``r2mfnet.configs`` to ``configs/``), so an installed wheel finds
them at ``r2mfnet/configs``; an editable install or a checkout finds ``configs/`` next to the
imported ``r2mfnet/`` folder. ``scripts/*.py`` and the console commands (``r2mfnet-predict``, ...)
both hand Hydra the one absolute path chosen here. ``R2MFNET_CONFIG_DIR`` points elsewhere (an
experiment's own tree, or a copy edited by hand), whichever way r2mfnet was installed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig

from r2mfnet.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent
INSTALLED = _PACKAGE / "configs"
"""Where a wheel (``pip install r2mfnet-*.whl`` or ``pip install .``) puts the configs."""
CHECKOUT = _PACKAGE.parent / "configs"
"""The repository's own folder: used from a checkout and by an editable install."""


def config_dir() -> Path:
    """The Hydra config folder; a :class:`ConfigError` when there is none.

    ``R2MFNET_CONFIG_DIR`` when set, else the configs installed inside the package, else the
    checkout's ``configs/``.
    """
    override = os.environ.get("R2MFNET_CONFIG_DIR")
    if override:
        path = Path(override).resolve()
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"R2MFNET_CONFIG_DIR='{override}' holds no Hydra configs (config.yaml "
                              "missing): point it at a copy of the repository's configs/ folder")
        return path
    for path in (INSTALLED, CHECKOUT):
        if (path / "config.yaml").is_file():
            return path
    raise ConfigError(f"no Hydra configs in '{INSTALLED}' or '{CHECKOUT}' (config.yaml missing): "
                      "reinstall r2mfnet, or set R2MFNET_CONFIG_DIR to a copy of configs/")


def _rank_zero(on_rank_zero: Any, elsewhere: Any = None) -> Any:
    """``${r2mfnet_rank_zero:a,b}``: ``a`` in a single process or on torchrun's rank 0, else ``b``.

    Training's Hydra settings use it so that only rank 0 writes the run folder's ``.hydra/`` and
    log file (the ranks share that folder), without rewriting the command line per rank.
    """
    return on_rank_zero if int(os.environ.get("RANK", "0")) == 0 else elsewhere


def register_resolvers() -> None:
    """Register the configs' own interpolations (idempotent); before Hydra composes a config."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("r2mfnet_rank_zero"):
        OmegaConf.register_new_resolver("r2mfnet_rank_zero", _rank_zero)


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``config_name`` with ``overrides``, as its entry point would see it (minus ``hydra``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        # Called from inside a running entry point (r2mfnet-compare composes each run's training
        # config): Hydra is already set up on this same config folder and cannot be set up twice.
        return hydra_compose(config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))
