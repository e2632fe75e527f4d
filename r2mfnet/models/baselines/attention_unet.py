"""Attention U-Net (Oktay et al. 2018): additive attention gates on the skips of a U-Net."""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from r2mfnet.models.base import SegmentationModel, check_common
from r2mfnet.models.blocks.attention_gate import AttentionGate
from r2mfnet.models.blocks.conv import conv_block
from r2mfnet.models.skeleton import EncoderDecoder


class AttentionUNet(SegmentationModel):
    """U-Net whose every skip feature is gated by the decoder feature one level coarser
    (:class:`~r2mfnet.models.blocks.attention_gate.AttentionGate`); double 3x3 conv stages,
    nearest x2 + 3x3 conv up-sampling as in the common reference implementation."""

    name = "attention_unet"

    def __init__(self, in_channels: int = 1, num_classes: int = 1, base_channels: int = 16,
                 depth: int = 4, norm: str = "group"):
        check_common(in_channels, num_classes, base_channels, depth, norm)
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         base_channels=base_channels, depth=depth, norm=norm)
        channels = [base_channels * 2**level for level in range(depth + 1)]

        def gate(level: int, skip_channels: int, gate_channels: int) -> nn.Module:
            return AttentionGate(skip_channels, gate_channels, norm=norm)

        self.net = EncoderDecoder(in_channels, num_classes, channels,
                                  partial(conv_block, norm=norm), skip=gate,
                                  upsample="nearest_conv", norm=norm)

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x)[0]}
