"""Peers: well-known segmentation networks from other libraries, trained by this project's code.

They come with the optional extra ``peers`` (``pip install -e ".[peers]"``), so the core install
does not need their libraries. This module knows which peers exist and which library each needs
without importing that library (segmentation-models-pytorch takes seconds to import, and every
command imports the model registry): :func:`installed_peers` only asks whether the library can
be found, and :func:`peer_class` imports a peer's module when it is actually asked for.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, NamedTuple

from r2mfnet.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from r2mfnet.models.base import SegmentationModel

INSTALL = 'pip install -e ".[peers]"'
"""The command that adds every peer's library."""


class Peer(NamedTuple):
    module: str       # the r2mfnet module defining the class
    cls: str          # the class name in it
    library: str      # the top-level module of the library it needs
    distribution: str  # the library's name on PyPI, for messages


PEERS: dict[str, Peer] = {
    "smp_unet": Peer("r2mfnet.models.peers.smp_unet", "SmpUNet", "segmentation_models_pytorch",
                     "segmentation-models-pytorch"),
}
"""Registry name -> where the peer lives and what it needs."""


def _findable(module: str) -> bool:
    """True when ``module`` can be imported, judged without importing it.

    ``find_spec`` raises ValueError for a module set to ``None`` in ``sys.modules`` (the standard
    way to block an import) and ImportError from a blocking import hook; both mean "absent".
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed_peers() -> list[str]:
    """Names of the peers whose library is installed, in :data:`PEERS` order."""
    return [name for name, peer in PEERS.items() if _findable(peer.library)]


def peer_class(name: str) -> type["SegmentationModel"]:
    """The class of peer ``name``; :class:`ConfigError` with the install command when its
    library is missing or fails to import (a one-line message, since it ends a command)."""
    peer = PEERS[name]
    try:
        module = importlib.import_module(peer.module)
    except ImportError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"model.name={name} needs {peer.distribution}, which cannot be imported ({reason}); "
            f"install the optional extra: {INSTALL}"
        ) from None
    return getattr(module, peer.cls)


__all__ = ["INSTALL", "PEERS", "Peer", "installed_peers", "peer_class"]
