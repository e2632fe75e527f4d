"""r2mfnet: R2MF-Net and its baselines for spine segmentation in multi-view X-rays.

``NO_ALBUMENTATIONS_UPDATE`` is set here, before anything can import albumentations, because
albumentations otherwise tries the network on import and no machine of ours has internet.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from r2mfnet.errors import R2MFNetError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["R2MFNetError", "__version__", "load_model"]


def load_model(path: str, map_location: str = "cpu"):
    """Rebuild a trained model from a checkpoint written by the trainer (needs nothing else)."""
    from r2mfnet.checkpoint import load_model as _load_model

    return _load_model(path, map_location=map_location)
