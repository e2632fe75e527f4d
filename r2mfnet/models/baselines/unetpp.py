"""UNet++ (Zhou et al. 2018): nested, densely connected skip pathways."""
from __future__ import annotations

import torch
from torch import nn

from r2mfnet.models.base import SegmentationModel, check_common
from r2mfnet.models.blocks.conv import conv_block


class UNetPlusPlus(SegmentationModel):
    """UNet++ without deep supervision.

    Node ``X[i][j]`` (level ``i``, ``j`` = how many nested convs along the skip) is a double 3x3
    block on ``cat(X[i][0..j-1], up(X[i+1][j-1]))``, ``up`` a 2x2 transposed conv (as in the
    authors' code). The prediction is the 1x1 head on ``X[0][depth]``. Deep supervision (averaging
    the heads of ``X[0][1..depth]``) is left out: every model here is trained with the same
    single-output loss.
    """

    name = "unetpp"

    def __init__(self, in_channels: int = 1, num_classes: int = 1, base_channels: int = 16,
                 depth: int = 4, norm: str = "group"):
        check_common(in_channels, num_classes, base_channels, depth, norm)
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         base_channels=base_channels, depth=depth, norm=norm)
        ch = [base_channels * 2**level for level in range(depth + 1)]
        self.pool = nn.MaxPool2d(2)
        # nodes[f"{i}_{j}"], ups[f"{i}_{j}"] up-samples X[i+1][j-1] for node X[i][j]
        self.nodes = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        for i in range(depth + 1):
            self.nodes[f"{i}_0"] = conv_block(in_channels if i == 0 else ch[i - 1], ch[i], norm)
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                self.ups[f"{i}_{j}"] = nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2)
                self.nodes[f"{i}_{j}"] = conv_block((j + 1) * ch[i], ch[i], norm)
        self.head = nn.Conv2d(ch[0], num_classes, 1)

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        depth = self.depth
        grid: list[list[torch.Tensor]] = [[] for _ in range(depth + 1)]
        h = x
        for i in range(depth + 1):
            h = self.nodes[f"{i}_0"](h if i == 0 else self.pool(h))
            grid[i].append(h)
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                up = self.ups[f"{i}_{j}"](grid[i + 1][j - 1])
                grid[i].append(self.nodes[f"{i}_{j}"](torch.cat([*grid[i][:j], up], dim=1)))
        return {"logits": self.head(grid[0][depth])}
