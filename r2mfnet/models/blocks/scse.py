"""SCSE-Lite: concurrent channel and spatial squeeze-excitation at a very small parameter cost."""
from __future__ import annotations

import torch
from torch import nn

DEFAULT_REDUCTION = 32
"""Channel reduction of the SE bottleneck. SE-Nets use 16; "Lite" doubles it. At the default
R2MF-Net bottleneck (256 channels) that is an 8-unit hidden layer: ~4.4k parameters per network,
about 0.2% of the whole model (the contract demands < 1%)."""


class SCSELite(nn.Module):
    """Channel SE via 1x1 convs with a large reduction, plus a 1x1 spatial gate.

    * channel gate ``c = sigmoid(W2 silu(W1 avgpool(x)))`` (``W1``: C -> max(C/r, 4) 1x1 conv,
      ``W2`` back to C): *which* feature maps matter for this image. SiLU instead of SE's ReLU:
      with a hidden layer this narrow (8 units at the default size, 4 in small models) all ReLU
      units can be negative for every image, which silently freezes the gate at a constant
      (it happened in our tests); SiLU has no dead region;
    * spatial gate ``s = sigmoid(conv1x1_{C->1}(x))``: *where* in the image to look;
    * **combination rule: additive**, ``y = x * c + x * s = x * (c + s)`` (the "concurrent"
      scSE of Roy et al. 2018). Why add rather than multiply or take the max: with small initial
      pre-activations both gates start near 0.5, so ``c + s ~ 1`` and the module starts close to
      the identity, i.e. switching it on does not disturb the network at initialisation; and
      each gate alone can still pass a feature (a product would let either gate veto it).

    It sits at the bottleneck (the lowest resolution), so its compute is negligible too.
    """

    def __init__(self, channels: int, reduction: int = DEFAULT_REDUCTION, min_hidden: int = 4):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"SCSE reduction must be >= 1, got {reduction}")
        hidden = max(channels // reduction, min_hidden)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.SiLU(),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.channel_gate(x) + self.spatial_gate(x))
