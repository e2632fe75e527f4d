"""r2mfnet: R2MF-Net and its baselines for spine segmentation in multi-view X-rays.

Importing the package changes nothing outside it (no environment variable, no ``sys.argv``);
albumentations' update check is switched off where albumentations is imported
(:mod:`r2mfnet.data.augment`).
"""
from __future__ import annotations

from r2mfnet.errors import R2MFNetError

__version__ = "0.1.0"

__all__ = ["R2MFNetError", "__version__", "load_model"]


def load_model(path: str, map_location: str = "cpu"):
    """Rebuild a trained model from a checkpoint written by the trainer (needs nothing else)."""
    from r2mfnet.checkpoint import load_model as _load_model

    return _load_model(path, map_location=map_location)
