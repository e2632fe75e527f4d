"""The models R2MF-Net is compared with."""
from r2mfnet.models.baselines.attention_unet import AttentionUNet
from r2mfnet.models.baselines.r2unet import R2UNet
from r2mfnet.models.baselines.unet import UNet
from r2mfnet.models.baselines.unetpp import UNetPlusPlus

__all__ = ["AttentionUNet", "R2UNet", "UNet", "UNetPlusPlus"]
