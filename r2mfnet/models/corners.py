"""CornerNet: the four corners of the vertebra in a level crop (issue 23's corner output).

Why
    R2MF-Net and every baseline give binary masks only (the paper's own stated limitation), and
    the Cobb angle read from a mask's outline at 256 x 128 carries most of the angle error
    (``docs/clinical.md``, the error budget). SpineWeb16 has all 68 corner landmarks of every
    training image, so a second, small network can learn to read the corners from the radiograph
    at full resolution, one vertebra at a time, where a mask (any model's) has found it.
How
    A plain VGG-style stack (3x3 conv-norm-ReLU pairs, 2x2 pooling) over a ``size`` x ``size``
    crop (:mod:`r2mfnet.data.vertebra_crops`), then a flattening head: flattening, not global
    pooling, because where the corners are is the answer, and pooling would discard it. The
    output is ``(batch, 4, 2)``: TL, TR, BL, BR in the crop's coordinates (-1..1).
"""
from __future__ import annotations

import torch
from torch import nn

from r2mfnet.models.blocks.conv import ConvNormAct


class CornerNet(nn.Module):
    """Corner regressor over one-channel crops (see module doc).

    Args:
        size: crop side in pixels (a multiple of ``2**len(channels)``).
        channels: features per stage; each stage halves the crop.
        hidden: width of the fully connected layer.
    """

    def __init__(self, size: int = 64, channels: tuple[int, ...] = (16, 32, 64, 96), hidden: int = 128):
        super().__init__()
        if size % (2 ** len(channels)):
            raise ValueError(f"size {size} is not a multiple of 2**{len(channels)}")
        self.size = int(size)
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [ConvNormAct(c_in, c, norm="batch"), ConvNormAct(c, c, norm="batch"), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        cells = (size // 2 ** len(channels)) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * cells, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 8))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``crops`` (B, 1, size, size) -> corners (B, 4, 2)."""
        return self.head(self.features(crops)).view(-1, 4, 2)
