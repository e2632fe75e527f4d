"""Segmentation models: R2MF-Net and the baselines it is compared with.

>>> from r2mfnet.models import create, available_models
>>> model = create("r2mfnet", base_channels=16, depth=4)
>>> out = model(x)            # {"logits": [B,1,H,W], "coarse_logits": [B,1,H,W]}
>>> create(**model.model_config)   # rebuilds the same architecture

The contracts (kwargs, output dict, padding, stages) are in docs/design.md; the concrete
architecture and the reasons for it in docs/architecture.md.
"""
from r2mfnet.models.base import SegmentationModel
from r2mfnet.models.baselines import AttentionUNet, R2UNet, UNet, UNetPlusPlus
from r2mfnet.models.r2mfnet import R2MFNet
from r2mfnet.models.registry import available_models, create, model_class

__all__ = [
    "AttentionUNet",
    "R2MFNet",
    "R2UNet",
    "SegmentationModel",
    "UNet",
    "UNetPlusPlus",
    "available_models",
    "create",
    "model_class",
]
