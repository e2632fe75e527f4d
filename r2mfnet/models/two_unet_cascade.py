"""Two plain U-Nets in cascade: the reference R2MF-Net's cost is budgeted against (issue 7).

Built from two independent :class:`~r2mfnet.models.baselines.unet.UNet` instances rather than
from R2MF-Net's switches, so that the reference does not move when R2MF-Net's code changes. The
second U-Net sees the image and the first one's sigmoid probability, as R2MF-Net's fine network
does, and both outputs are returned (and supervised) like R2MF-Net's.

It is a model (in ``models``, not in the registry) so that both the size table
(:mod:`r2mfnet.models.summary`) and the speed benchmark (:mod:`r2mfnet.benchmark`) build this one
reference.
"""
from __future__ import annotations

import torch
from torch import nn

from r2mfnet.models.baselines.unet import UNet

__all__ = ["TwoUNetCascade"]


class TwoUNetCascade(nn.Module):
    """``coarse = UNet(x)``, ``fine = UNet(cat[x, sigmoid(coarse)])``; same width, depth, norm."""

    has_stages = False

    def __init__(self, in_channels: int = 1, num_classes: int = 1, base_channels: int = 16, depth: int = 4,
                 norm: str = "group") -> None:
        super().__init__()
        self.coarse = UNet(in_channels, num_classes, base_channels, depth, norm)
        self.fine = UNet(in_channels + num_classes, num_classes, base_channels, depth, norm)
        self.model_config = {"name": "two_unet_cascade", "in_channels": in_channels, "num_classes": num_classes,
                             "base_channels": base_channels, "depth": depth, "norm": norm}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        coarse = self.coarse(x)["logits"]
        fine = self.fine(torch.cat([x, torch.sigmoid(coarse)], dim=1))["logits"]
        return {"logits": fine, "coarse_logits": coarse}
