"""The Inception-style multi-branch block of R2MF-Net."""
from __future__ import annotations

import torch
from torch import nn

from r2mfnet.models.blocks.conv import make_norm


def split_channels(total: int, parts: int) -> list[int]:
    """Split ``total`` channels into ``parts`` near-equal widths (the first ones get the rest)."""
    if total < parts:
        raise ValueError(f"cannot split {total} channels into {parts} branches (need >= {parts})")
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


class InceptionBlock(nn.Module):
    """Four parallel branches, concatenated, fused by 1x1 conv + norm, plus a residual projection.

    Branches (each gets ``out_channels / 4`` channels, the first ones one more if it does not
    divide):

    1. ``1x1`` conv -- per-pixel channel mixing (receptive field 1);
    2. ``3x3`` conv -- local texture, the plain U-Net's view (RF 3);
    3. ``3x3`` conv-norm-ReLU then ``3x3`` conv with **dilation 2** (RF 7) -- wide context at the
       cost of two small convs, useful for a long, thin structure such as the spine where a pixel's
       label depends on the neighbouring vertebrae;
    4. pooling branch: ``1x1`` conv then ``3x3`` max-pool (stride 1) -- "strongest response
       nearby". Inception v1 pools *before* its 1x1; we project first because stride-1 max-pooling
       is memory-bound and slow on CPU (on the input it cost more than a 3x3 conv), and pooling
       the 4-8x narrower projection keeps the branch's meaning at a fraction of the cost.

    The concatenation is normalised once and passed through ReLU (one GroupNorm over all branches
    instead of four: for power-of-two widths each group lies inside one branch), then fused by a
    1x1 conv + norm. A residual projection (1x1 conv + norm when the width changes, identity
    otherwise) is added before the final ReLU, so the block is easy to optimise at any depth.

    Implementation: branches that read the same input with the same kernel are computed as one
    wider convolution and split (1x1 of branches 1 and 4; first 3x3 of branches 2 and 3). That is
    exactly the four-branch block, but wide convolutions run far better on CPU than 4-channel
    ones.

    Cost: with ``C_in = C_out = C`` the block needs about ``7.6 C^2`` multiply-adds per pixel,
    versus ``18 C^2`` for the double 3x3 block it replaces, which is what pays for R2-Jump and the
    second (fine) network within the project's compute budget (see docs/architecture.md).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group", dilation: int = 2):
        super().__init__()
        self.widths = split_channels(out_channels, 4)
        w1, w3, wd, wp = self.widths
        self.conv1x1 = nn.Conv2d(in_channels, w1 + wp, 1, bias=False)  # branches 1 and 4
        self.conv3x3 = nn.Conv2d(in_channels, w3 + wd, 3, padding=1, bias=False)  # branches 2, 3
        self.dilated_norm = make_norm(norm, wd)
        self.dilated = nn.Conv2d(wd, wd, 3, padding=dilation, dilation=dilation, bias=False)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.branch_norm = make_norm(norm, out_channels)
        self.fuse = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.fuse_norm = make_norm(norm, out_channels)
        if in_channels == out_channels:
            self.residual: nn.Module = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), make_norm(norm, out_channels)
            )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1, w3, wd, wp = self.widths
        b1, bp = torch.split(self.conv1x1(x), [w1, wp], dim=1)
        b3, bd = torch.split(self.conv3x3(x), [w3, wd], dim=1)
        bd = self.dilated(self.act(self.dilated_norm(bd)))
        y = torch.cat([b1, b3, bd, self.pool(bp)], dim=1)
        y = self.act(self.branch_norm(y))
        y = self.fuse_norm(self.fuse(y))
        return self.act(y + self.residual(x))


class LightInceptionBlock(nn.Module):
    """The Inception idea at the cost of one convolution: for the high-resolution levels.

    The profile of R2MF-Net's training step (docs/performance.md) shows that at levels 0 and 1
    (full and half resolution, 8-16 channels at the recipe's width) :class:`InceptionBlock` runs
    at 3-11 GFLOP/s: its five convolutions, four of them 2-4 channels wide, and four
    normalisations are each too small to use the machine, so the block that needs fewer FLOPs
    than a double 3x3 conv took longer (143 against 114 ms forward and backward at level 0).
    This block keeps two Inception branches with different receptive fields and fuses them once:

    1. ``3x3`` conv to ``out_channels`` (one wide convolution), its channels split in half;
    2. the first half is the **3x3 branch** (receptive field 3);
    3. the second half goes through a ``3x3`` conv with **dilation 2**: the **wide-context branch**
       (receptive field 7, as branch 3 of :class:`InceptionBlock`);
    4. both halves concatenated, one norm, ReLU.

    About ``9 C_in C + 4.5 (C/2)^2`` multiply-adds per pixel, under half of a double 3x3 block,
    at the efficiency of a wide convolution (90 ms at level 0 in the same measurement). The 1x1
    and pooling branches are left out because at 8-16 channels they are the narrowest
    convolutions, the ones that ran worst; the deeper levels keep the full block.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group", dilation: int = 2):
        super().__init__()
        if out_channels < 2:
            raise ValueError(f"LightInceptionBlock needs out_channels >= 2, got {out_channels}")
        self.local_channels = out_channels // 2
        wide = out_channels - self.local_channels
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.dilated = nn.Conv2d(wide, wide, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = make_norm(norm, out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        local, wide = torch.split(y, [self.local_channels, y.shape[1] - self.local_channels], dim=1)
        return self.act(self.norm(torch.cat([local, self.dilated(wide)], dim=1)))
