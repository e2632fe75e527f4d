"""A generic encoder/decoder U-Net that the stage blocks, skip paths and attention plug into.

R2MF-Net's two networks, U-Net, R2U-Net and Attention U-Net are all this skeleton with different
parts (UNet++ has nested skips and its own module). Level ``l`` (0 = full resolution) has
``channels[l]`` features at scale ``1/2**l``; level ``depth`` is the bottleneck.

::

    x -> enc0 -[fuse0]-> s0 --skip0(s0, d1)-----------------------> cat -> dec0 -> head -> logits
          | pool                                                      ^ up0
          enc1 -[fuse1]-> s1 --skip1(s1, d2)---------> cat -> dec1 = d1
                | pool                                   ^ up1
                ...                                      |
                enc_depth (bottleneck) -> attention -> d_depth
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from r2mfnet.models.blocks.conv import ConvNormAct
from r2mfnet.models.blocks.recurrent import IdentitySkip

BlockFactory = Callable[[int, int], nn.Module]
"""``(in_channels, out_channels) -> stage block`` (e.g. double 3x3 conv, Inception, RRCNN)."""
SkipFactory = Callable[[int, int, int], nn.Module]
"""``(level, channels, gate_channels) -> skip module`` called as ``skip(feature, coarser_decoder)``."""

UPSAMPLES: tuple[str, ...] = ("transpose", "nearest_conv")


def make_upsample(kind: str, in_channels: int, out_channels: int, norm: str = "group") -> nn.Module:
    """x2 up-sampling from level l+1 to level l.

    ``"transpose"``: 2x2 transposed conv, stride 2 (Ronneberger's "up-conv", also used by
    R2MF-Net). ``"nearest_conv"``: nearest x2 then 3x3 conv-norm-ReLU (the up-sampling of the
    R2U-Net and Attention U-Net reference implementations).
    """
    if kind == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
    if kind == "nearest_conv":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvNormAct(in_channels, out_channels, 3, norm=norm),
        )
    raise ValueError(f"unknown upsample {kind!r}; expected one of {UPSAMPLES}")


def identity_skip(level: int, channels: int, gate_channels: int) -> nn.Module:
    """The plain U-Net skip (the :data:`SkipFactory` for "no skip processing")."""
    return IdentitySkip()


class EncoderDecoder(nn.Module):
    """U-Net skeleton with pluggable stage block, skip path, bottleneck attention, fusion.

    Args:
        in_channels, num_classes: input channels and logit channels.
        channels: widths per level, ``len = depth + 1`` (last = bottleneck).
        block: stage block factory used for every encoder and decoder stage.
        skip: skip-path factory (default: identity).
        bottleneck_attention: module applied to the bottleneck output (default: identity).
        upsample: see :func:`make_upsample`.
        fusions: optional per-encoder-level modules ``f(feature, context)`` applied to each
            encoder stage output when :meth:`forward` gets a ``context`` (MC-Skip).
        norm: normalisation for the up-sampling convs that have one.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int],
        block: BlockFactory,
        skip: SkipFactory | None = None,
        bottleneck_attention: nn.Module | None = None,
        upsample: str = "transpose",
        fusions: Sequence[nn.Module] | None = None,
        norm: str = "group",
    ):
        super().__init__()
        channels = list(channels)
        depth = len(channels) - 1
        if depth < 1:
            raise ValueError("EncoderDecoder needs at least two levels")
        self.depth = depth
        skip = skip or identity_skip
        self.encoder = nn.ModuleList()
        prev = in_channels
        for c in channels:
            self.encoder.append(block(prev, c))
            prev = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck_attention = bottleneck_attention or nn.Identity()
        self.skips = nn.ModuleList(
            [skip(level, channels[level], channels[level + 1]) for level in range(depth)]
        )
        self.ups = nn.ModuleList(
            [make_upsample(upsample, channels[level + 1], channels[level], norm)
             for level in range(depth)]
        )
        self.decoder = nn.ModuleList(
            [block(2 * channels[level], channels[level]) for level in range(depth)]
        )
        self.fusions = nn.ModuleList(fusions) if fusions is not None else None
        if self.fusions is not None and len(self.fusions) != depth:
            raise ValueError(f"need one fusion module per encoder level ({depth})")
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(
        self, x: torch.Tensor, context: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return ``(logits, decoder_features)``; ``decoder_features[l]`` is the decoder output at
        level ``l`` (``[depth]`` = bottleneck after attention), the MC-Skip sources."""
        skips: list[torch.Tensor] = []
        h = x
        for level in range(self.depth):
            h = self.encoder[level](h)
            if self.fusions is not None and context is not None:
                h = self.fusions[level](h, context)
            skips.append(h)
            h = self.pool(h)
        h = self.bottleneck_attention(self.encoder[self.depth](h))
        features: list[torch.Tensor] = [h] * (self.depth + 1)
        for level in reversed(range(self.depth)):
            up = self.ups[level](h)
            s = self.skips[level](skips[level], h)
            h = self.decoder[level](torch.cat([up, s], dim=1))
            features[level] = h
        return self.head(h), features
