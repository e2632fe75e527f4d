"""MC-Skip: multi-scale cross-stage skips from the coarse network's decoder into the fine encoder."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from r2mfnet.models.blocks.conv import make_norm

FUSIONS: tuple[str, ...] = ("gate", "concat", "pyramid")
DEFAULT_GATE_INIT = 0.1
"""Initial value of the per-channel fusion gate. Near zero so that at the start of training the
fine encoder is barely perturbed by (still meaningless) coarse features and behaves like a plain
encoder on image + coarse probability; not exactly zero so that the projections receive a gradient
from the first step (with a zero gate, d loss / d projection = 0 until the gate moves)."""


class NoFusion(nn.Module):
    """The fine-encoder stage keeps its own feature: MC-Skip left out at this level.

    Used below ``mcskip_from_level`` (:class:`~r2mfnet.models.r2mfnet.R2MFNet`). The profile showed
    the full-resolution fusion costing 5 % of the training step for 0.3 % of its FLOPs (resizes
    and a memory-bound sum), while a coarse network at a quarter of the input size has no
    full-resolution detail to hand over there; the coarser stages still receive it. The default
    config (``mcskip_from_level: 1``) uses it at level 0; ``r2mfnet_v2`` and ``r2mfnet_v1`` fuse
    into every stage.
    """

    def forward(self, x: torch.Tensor, context: Sequence[torch.Tensor]) -> torch.Tensor:
        return x


def source_levels(level: int, depth: int, num_levels: int) -> list[int]:
    """Coarse-decoder levels fused into fine-encoder stage ``level``.

    The same level and the ``num_levels - 1`` next coarser ones, clipped at the bottleneck
    (level ``depth``, the start of the decoder). Coarser levels carry more context (which part
    of the image is spine), the same level carries the coarse network's refined boundary; finer
    levels are not used because down-sampling them would throw away exactly that precision.
    """
    if num_levels < 1:
        raise ValueError(f"mcskip_levels must be >= 1, got {num_levels}")
    return list(range(level, min(level + num_levels, depth + 1)))


class MCSkip(nn.Module):
    """Fuse several coarse-decoder features into one fine-encoder feature.

    Each source (channels ``C_s`` at scale ``1/2^s``) is projected by a 1x1 conv to the stage's
    width ``C_l`` *at its own resolution* and then resized bilinearly to the stage's size (the two
    commute, and projecting first is up to 4^(s-l) times cheaper). Fusion:

    * ``"gate"`` (default): ``y = x + gamma * sum_s P_s(c_s)`` with a learnable per-channel
      ``gamma`` initialised to :data:`DEFAULT_GATE_INIT`; the fine stage stays a residual of its
      own feature and learns how much cross-stage context to take.
    * ``"concat"``: ``y = ReLU(norm(conv1x1([x, P_1(c_1), ..., P_k(c_k)])))``, back to ``C_l``.
    * ``"pyramid"``: the gate's sum built coarsest first, as a feature pyramid does: each
      projection is added to the running sum resized to its own scale, and only the total is
      resized to the stage's size. The same sources, weights and gate, but one resize at the
      stage's resolution instead of one per source: at full resolution, where the gate's three
      bilinear resizes and their backward cost more than the stage's block (docs/performance.md),
      this is what makes MC-Skip affordable. Not numerically the gate's sum (resizing twice
      is not resizing once), hence its own name.
    """

    def __init__(
        self,
        channels: int,
        source_channels: Sequence[int],
        sources: Sequence[int],
        fusion: str = "gate",
        norm: str = "group",
        gate_init: float = DEFAULT_GATE_INIT,
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"mcskip_fusion must be one of {FUSIONS}, got {fusion!r}")
        self.sources = [int(s) for s in sources]
        self.fusion = fusion
        self.projections = nn.ModuleList(
            [nn.Conv2d(source_channels[s], channels, 1) for s in self.sources]
        )
        if fusion in ("gate", "pyramid"):
            self.gate = nn.Parameter(torch.full((channels,), float(gate_init)))
        else:
            n = len(self.sources) + 1
            self.fuse = nn.Sequential(
                nn.Conv2d(n * channels, channels, 1, bias=False),
                make_norm(norm, channels),
                nn.ReLU(),
            )

    def forward(self, x: torch.Tensor, context: Sequence[torch.Tensor]) -> torch.Tensor:
        """``x``: fine-encoder feature; ``context[s]``: coarse-decoder feature at level ``s``."""
        if self.fusion == "pyramid":
            return x + self.gate.view(1, -1, 1, 1) * self._pyramid_sum(x, context)
        projected = []
        for s, proj in zip(self.sources, self.projections):
            p = proj(context[s])
            if p.shape[-2:] != x.shape[-2:]:
                p = F.interpolate(p, size=x.shape[-2:], mode="bilinear", align_corners=False)
            projected.append(p)
        if self.fusion == "gate":
            total = projected[0]
            for p in projected[1:]:
                total = total + p
            return x + self.gate.view(1, -1, 1, 1) * total
        return self.fuse(torch.cat([x, *projected], dim=1))

    def _pyramid_sum(self, x: torch.Tensor, context: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum of the projected sources, coarsest first, resized step by step (``"pyramid"``)."""
        order = sorted(range(len(self.sources)), key=lambda i: self.sources[i], reverse=True)
        total: torch.Tensor | None = None
        for i in order:
            p = self.projections[i](context[self.sources[i]])
            if total is not None:
                if total.shape[-2:] != p.shape[-2:]:
                    total = F.interpolate(total, size=p.shape[-2:], mode="bilinear", align_corners=False)
                p = p + total
            total = p
        assert total is not None
        if total.shape[-2:] != x.shape[-2:]:
            total = F.interpolate(total, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return total
