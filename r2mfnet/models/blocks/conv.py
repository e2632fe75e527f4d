"""Basic layers shared by every model: normalisation factory, conv-norm-act, the double 3x3 block.

Normalisation choice (applies to every model in the package): **GroupNorm by default**.
Why: the realistic training regime of this project is full radiographs (e.g. 512x256) on CPU or
small GPUs, i.e. batches of 1-4. BatchNorm statistics from so few samples are noisy and, at batch
size 1 with a tiny bottleneck, undefined; GroupNorm normalises each sample on its own, so training
behaves the same at any batch size and the output of one image never depends on what else is in
the batch, in train *and* eval mode. ``norm="batch"`` is kept for comparison with papers that use
BatchNorm; in eval mode it uses running statistics, so its output is batch-independent as well.
"""
from __future__ import annotations

import torch
from torch import nn

NORMS: tuple[str, ...] = ("group", "batch")
"""Accepted values of every model's ``norm`` argument."""

MAX_GROUPS = 8
"""GroupNorm uses the largest divisor of the channel count that is <= 8 as its number of groups:
8 groups at every width >= 8 of the power-of-two ladder (16 -> 2 channels/group, 256 -> 32), and a
valid (smaller) group count for odd widths, so any ``base_channels`` works."""


def num_groups(channels: int, max_groups: int = MAX_GROUPS) -> int:
    """Largest divisor of ``channels`` not above ``max_groups`` (always >= 1)."""
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return the normalisation layer named ``kind`` ("group" or "batch") for ``channels``."""
    if kind == "group":
        return nn.GroupNorm(num_groups(channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


class ConvNormAct(nn.Sequential):
    """Conv (no bias, the norm has one) -> norm -> ReLU; ``padding`` keeps the spatial size."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        norm: str = "group",
    ):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                      bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(),
        )


class ConvBlock(nn.Sequential):
    """The plain U-Net stage (Ronneberger et al. 2015): two 3x3 conv-norm-ReLU.

    Used by the U-Net, Attention U-Net and UNet++ baselines, and by R2MF-Net when
    ``inception=False`` (the Inception block's plain counterpart). Padded convolutions keep the
    size (Ronneberger used unpadded ones plus cropping; padding is the modern convention and lets
    the output match the input pixel for pixel).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group"):
        super().__init__(
            ConvNormAct(in_channels, out_channels, 3, norm=norm),
            ConvNormAct(out_channels, out_channels, 3, norm=norm),
        )


def conv_block(in_channels: int, out_channels: int, norm: str = "group") -> ConvBlock:
    """Factory alias for :class:`ConvBlock` (double 3x3), the signature block factories share."""
    return ConvBlock(in_channels, out_channels, norm=norm)
