"""R2U-Net (Alom et al. 2018): recurrent residual conv stages in a U-Net."""
from __future__ import annotations

from functools import partial

import torch

from r2mfnet.errors import ConfigError
from r2mfnet.models.base import SegmentationModel, check_common
from r2mfnet.models.blocks.recurrent import RRCNNBlock
from r2mfnet.models.skeleton import EncoderDecoder


class R2UNet(SegmentationModel):
    """R2U-Net: every encoder/decoder stage is an RRCNN block (1x1 conv, two recurrent convs with
    ``recurrent_steps`` (t=2) steps each, residual add); up-sampling is nearest x2 + 3x3 conv
    (as in the authors' implementation); identity skips. Widths ``base_channels * 2**l``."""

    name = "r2unet"

    def __init__(self, in_channels: int = 1, num_classes: int = 1, base_channels: int = 16,
                 depth: int = 4, recurrent_steps: int = 2, norm: str = "group"):
        check_common(in_channels, num_classes, base_channels, depth, norm)
        if not isinstance(recurrent_steps, int) or recurrent_steps < 0:
            raise ConfigError(f"model.recurrent_steps must be an integer >= 0, "
                              f"got {recurrent_steps!r}")
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         base_channels=base_channels, depth=depth,
                         recurrent_steps=recurrent_steps, norm=norm)
        channels = [base_channels * 2**level for level in range(depth + 1)]
        block = partial(RRCNNBlock, steps=recurrent_steps, norm=norm)
        self.net = EncoderDecoder(in_channels, num_classes, channels, block,
                                  upsample="nearest_conv", norm=norm)

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x)[0]}
