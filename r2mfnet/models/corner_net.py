"""CornerNet: the four corners of the vertebra in a level crop (issue 23's corner output).

Why
    R2MF-Net and every baseline give binary masks only (the paper's own stated limitation), and
    the Cobb angle read from a mask's outline at 256 x 128 carries most of the angle error
    (``docs/clinical.md``, the error budget). SpineWeb16 has all 68 corner landmarks of every
    training image, so a second, small network can learn to read the corners from the radiograph
    at full resolution, one vertebra at a time, where a mask (any model's) has found it.
How
    A plain VGG-style stack of 3x3 conv-norm-ReLU pairs over a ``size`` x ``size`` crop
    (:mod:`r2mfnet.data.vertebra_crops`), then one of two heads. ``soft_argmax`` (the default):
    after two 2x2 poolings and two dilated convolutions for context, one heat map per corner at a
    quarter of the crop's size, whose expected position is the corner (a differentiable
    spatial-to-numerical transform, Nibali et al. 2018): position stays a position, and the
    expectation is finer than the map's cells. ``flatten``: four poolings and fully connected
    layers on the flattened features (not global pooling, which would throw away where things
    are). On SpineWeb16's validation crops the heat maps learnt faster and better (tilt error
    2.2 deg after 6 epochs against 2.7 deg after 12; ``docs/clinical.md``, logs in
    ``results/cobb_corners/scratch/``). The output is
    ``(batch, 4, 2)``: TL, TR, BL, BR in the crop's coordinates (-1..1).
"""
from __future__ import annotations

import torch
from torch import nn

from r2mfnet.models.blocks.conv import ConvNormAct


HEADS = ("flatten", "soft_argmax")


class CornerNet(nn.Module):
    """Corner regressor over one-channel crops (see module doc).

    Args:
        size: crop side in pixels (a multiple of ``2**len(channels)``).
        channels: features per stage. ``flatten`` uses every stage, each halving the crop;
            ``soft_argmax`` the first three, of which the first two halve it (its heat maps are
            at a quarter of the crop's size).
        hidden: width of the fully connected layer (``flatten``).
        head: ``"flatten"``: fully connected layers on the flattened last features;
            ``"soft_argmax"``: one heat map per corner at a quarter of the crop's size, whose
            expected position is the corner (differentiable spatial to numerical transform,
            Nibali et al. 2018), with two dilated convolutions for context before it.
    """

    def __init__(self, size: int = 64, channels: tuple[int, ...] = (16, 32, 64, 96), hidden: int = 128,
                 head: str = "soft_argmax"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if head == "soft_argmax" and len(channels) < 3:
            raise ValueError(f"the soft_argmax head needs three stages of channels, got {channels}")
        pools = len(channels) if head == "flatten" else 2
        if size % (2 ** pools):
            raise ValueError(f"size {size} is not a multiple of 2**{pools}")
        self.size = int(size)
        self.head_kind = head
        self.channels = tuple(int(c) for c in channels)
        self.hidden = int(hidden)
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(channels if head == "flatten" else channels[:3]):
            layers += [ConvNormAct(c_in, c, norm="batch"), ConvNormAct(c, c, norm="batch")]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        if head == "soft_argmax":
            layers += [ConvNormAct(c_in, c_in, dilation=2, norm="batch"),
                       ConvNormAct(c_in, c_in, dilation=4, norm="batch"), nn.Conv2d(c_in, 4, 1)]
            self.features = nn.Sequential(*layers)
            self.head = SoftArgmax()
            return
        self.features = nn.Sequential(*layers)
        cells = (size // 2 ** len(channels)) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * cells, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 8))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``crops`` (B, 1, size, size) -> corners (B, 4, 2)."""
        return self.head(self.features(crops)).view(-1, 4, 2)


class SoftArgmax(nn.Module):
    """Heat maps (B, K, h, w) -> their expected positions (B, K, 2) as (x, y) in -1..1 (pixel
    centres, as the crop's coordinates)."""

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, k, h, w = maps.shape
        p = torch.softmax(maps.flatten(2), dim=-1).view(b, k, h, w)
        xs = (torch.arange(w, dtype=maps.dtype, device=maps.device) + 0.5) * (2.0 / w) - 1.0
        ys = (torch.arange(h, dtype=maps.dtype, device=maps.device) + 0.5) * (2.0 / h) - 1.0
        return torch.stack([(p.sum(dim=2) * xs).sum(-1), (p.sum(dim=3) * ys).sum(-1)], dim=-1)
