"""Name -> model class registry: ``create("r2mfnet", depth=4)``, ``available_models()``.

Each model is also a plain class (``r2mfnet.models.R2MFNet``, ...) that Hydra can instantiate
through ``_target_``; ``create`` is what a checkpoint uses, since every model's
``model_config`` is ``{"name": ..., **kwargs}`` and ``create(**model.model_config)`` rebuilds it.

Peers from other libraries (:mod:`r2mfnet.models.peers`, optional extra ``peers``) are listed
only when their library is installed and imported only when asked for; asking for one without
its library is a :class:`ConfigError` that says which ``pip install`` adds it.
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.base import SegmentationModel
from r2mfnet.models.baselines import AttentionUNet, R2UNet, UNet, UNetPlusPlus
from r2mfnet.models.peers import PEERS, installed_peers, peer_class
from r2mfnet.models.r2mfnet import R2MFNet

MODELS: dict[str, type[SegmentationModel]] = {
    cls.name: cls for cls in (R2MFNet, UNet, R2UNet, AttentionUNet, UNetPlusPlus)
}


def available_models() -> list[str]:
    """Names accepted by :func:`create`: R2MF-Net first, then the baselines, then the peers whose
    library is installed."""
    return [*MODELS, *installed_peers()]


def model_class(name: str) -> type[SegmentationModel]:
    """The class registered under ``name`` (raises :class:`ConfigError` listing the names, or
    naming the install command of a peer whose library is missing)."""
    if isinstance(name, str) and name in PEERS:
        return peer_class(name)
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"model.name {name!r} is unknown; available: {', '.join(available_models())}"
        ) from None


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name`` with ``kwargs``; unknown keys raise :class:`ConfigError` (not a bare
    TypeError) naming the key and the accepted ones, since they come from user configs."""
    cls = model_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    return cls(**kwargs)
