"""Additive attention gate of Attention U-Net (Oktay et al. 2018)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r2mfnet.models.blocks.conv import make_norm


class AttentionGate(nn.Module):
    """Gate a skip feature ``x`` (level l) with the decoder feature ``g`` one level coarser.

    As in Oktay et al.: ``theta = conv2x2/stride2(x)`` brings ``x`` to ``g``'s grid,
    ``phi = conv1x1(g)``, ``alpha = sigmoid(psi(relu(theta + phi)))`` is a one-channel map,
    upsampled bilinearly to ``x``'s size; the output is ``W(x * alpha)`` with ``W`` = 1x1 conv +
    norm. ``F_int = C_x / 2`` intermediate channels (at least 1).
    """

    def __init__(self, skip_channels: int, gate_channels: int, norm: str = "group"):
        super().__init__()
        inter = max(skip_channels // 2, 1)
        self.theta = nn.Conv2d(skip_channels, inter, 2, stride=2, bias=False)
        self.phi = nn.Conv2d(gate_channels, inter, 1)
        self.psi = nn.Conv2d(inter, 1, 1)
        self.out = nn.Sequential(
            nn.Conv2d(skip_channels, skip_channels, 1, bias=False), make_norm(norm, skip_channels)
        )

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        if gate is None:
            raise ValueError("AttentionGate needs the coarser decoder feature as `gate`")
        a = torch.relu(self.theta(x) + self.phi(gate))
        alpha = torch.sigmoid(self.psi(a))
        alpha = F.interpolate(alpha, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(x * alpha)
