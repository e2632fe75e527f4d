"""Recurrent convolutions (Alom et al. 2018): the R2-Jump skip path and the R2U-Net block."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from r2mfnet.models.blocks.conv import ConvNormAct


class RecurrentConv(nn.Module):
    """Recurrent convolutional layer: ONE 3x3 conv-norm-ReLU applied ``1 + steps`` times.

    ``h_0 = f(x)``, ``h_k = f(x + h_{k-1})`` for ``k = 1..steps``, with the same weights at every
    step (Alom et al. 2018, as in their public implementation; ``steps=2`` is the paper's t=2).
    Weight sharing gives the receptive field of ``1 + steps`` stacked convs for the parameters of
    one; feeding ``x`` back in at each step keeps the unrolled net shallow for the gradient.
    """

    def __init__(self, channels: int, steps: int = 2, norm: str = "group"):
        super().__init__()
        if steps < 0:
            raise ValueError(f"recurrent steps must be >= 0, got {steps}")
        self.steps = steps
        self.conv = ConvNormAct(channels, channels, 3, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        for _ in range(self.steps):
            h = self.conv(x + h)
        return h


class RecurrentResidualUnit(nn.Module):
    """``x + RecurrentConv(x)``: one R2-Jump unit (identity-initialised in spirit: a residual)."""

    def __init__(self, channels: int, steps: int = 2, norm: str = "group"):
        super().__init__()
        self.rcl = RecurrentConv(channels, steps, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rcl(x)


class IdentitySkip(nn.Module):
    """The plain U-Net skip: passes the encoder feature through unchanged.

    Every skip module of :class:`~r2mfnet.models.skeleton.EncoderDecoder` takes
    ``(skip, gate)`` where ``gate`` is the decoder feature one level coarser; plain and R2-Jump
    skips ignore it, the Attention U-Net gate uses it.
    """

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        return x


class R2Jump(nn.Module):
    """R2-Jump skip path: a chain of ``units`` recurrent residual units on one encoder feature.

    The encoder feature at a shallow level has been through few layers and is "low-level"
    (edges, intensity), while the decoder feature it is concatenated with is semantic. Passing
    the skip through recurrent residual units gives it extra depth and context before the
    concatenation; shallow skips get more units than deep ones (see :func:`default_units`),
    because the semantic gap is widest there (the idea of MultiResUNet's ResPath, here with
    recurrent units). ``units=0`` degenerates to the identity skip.
    """

    def __init__(self, channels: int, units: int, steps: int = 2, norm: str = "group"):
        super().__init__()
        if units < 0:
            raise ValueError(f"R2-Jump units must be >= 0, got {units}")
        self.units = nn.Sequential(
            *[RecurrentResidualUnit(channels, steps, norm) for _ in range(units)]
        )

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        return self.units(x)


def default_units(depth: int) -> list[int]:
    """Units per skip level, shallow (level 0) first: ``max(1, ceil(depth / 2) - level)``, and at
    least 2 on the shallowest skip when ``depth > 1``.

    depth 2 -> ``[2, 1]``, 3 -> ``[2, 1, 1]``, **4 -> ``[2, 1, 1, 1]``**, 5 -> ``[3, 2, 1, 1, 1]``,
    6 -> ``[3, 2, 1, 1, 1, 1]``. Every skip gets one unit; the extra ones go to the shallowest
    skips, where the gap between low-level encoder features and decoder semantics is widest.
    Why so few: a unit costs the same FLOPs at every level (channels x2, pixels /4), and at
    full resolution it is the slowest thing in the network on CPU (a 16-channel 3x3 conv applied
    three times, forward and backward). The MultiResUNet-style schedule ``depth - level``
    (4, 3, 2, 1) made one training step of R2MF-Net 2.5x slower than two plain U-Nets; this one
    keeps it at about 2x (the project budget, see docs/architecture.md).
    """
    units = [max(1, (depth + 1) // 2 - level) for level in range(depth)]
    if depth > 1:
        units[0] = max(units[0], 2)
    return units


def resolve_units(units: Sequence[int] | None, depth: int) -> list[int]:
    """Validate an explicit per-level unit list or return :func:`default_units`.

    A list shorter than ``depth`` names the deepest skips (``[1]`` = one unit on the deepest
    skip, none elsewhere), so that one setting means the same at every depth: R2-Jump pays
    where the skips are cheap (docs/performance.md), and that does not depend on the depth.
    """
    if units is None:
        return default_units(depth)
    units = [int(u) for u in units]
    if not 1 <= len(units) <= depth or any(u < 0 for u in units):
        raise ValueError(
            f"r2jump_units must list 1 to {depth} non-negative counts (shallow first; a shorter "
            f"list names the deepest skips), got {units}"
        )
    return [0] * (depth - len(units)) + units


class RRCNNBlock(nn.Module):
    """R2U-Net stage (Alom et al. 2018): 1x1 conv to the new width, two recurrent convs, residual.

    ``y = p + RCL(RCL(p))`` with ``p = conv1x1(x)``, as in the authors' public implementation.
    """

    def __init__(self, in_channels: int, out_channels: int, steps: int = 2, norm: str = "group"):
        super().__init__()
        self.project = nn.Conv2d(in_channels, out_channels, 1)
        self.body = nn.Sequential(
            RecurrentConv(out_channels, steps, norm), RecurrentConv(out_channels, steps, norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.project(x)
        return p + self.body(p)
