"""U-Net (Ronneberger et al. 2015), the reference baseline."""
from __future__ import annotations

from functools import partial

import torch

from r2mfnet.models.base import SegmentationModel, check_common
from r2mfnet.models.blocks.conv import conv_block
from r2mfnet.models.skeleton import EncoderDecoder


class UNet(SegmentationModel):
    """U-Net: double 3x3 conv stages, max-pool down, 2x2 transposed-conv up, identity skips.

    Deviations from the 2015 paper, shared by all models here for a fair comparison: padded
    convolutions (output size = input size), a normalisation layer after each conv (GroupNorm by
    default, see :mod:`r2mfnet.models.blocks.conv`), and widths ``base_channels * 2**l``
    (the paper: 64 at depth 4). R2MF-Net with every switch off builds exactly this network.
    """

    name = "unet"

    def __init__(self, in_channels: int = 1, num_classes: int = 1, base_channels: int = 16,
                 depth: int = 4, norm: str = "group"):
        check_common(in_channels, num_classes, base_channels, depth, norm)
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         base_channels=base_channels, depth=depth, norm=norm)
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.net = EncoderDecoder(in_channels, num_classes, channels, partial(conv_block, norm=norm),
                                  upsample="transpose", norm=norm)

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x)[0]}
