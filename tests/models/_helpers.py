"""Shared constants and helpers for the model tests (tiny configurations: seconds on CPU)."""
from __future__ import annotations

import torch

from r2mfnet.models import available_models

TINY = dict(base_channels=4, depth=3)
"""Smallest sensible configuration: 4 channels (one per Inception branch), 3 down-samplings."""

ALL_MODELS = available_models()


def outputs_loss(out: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """BCE on every output of a model (both stages for R2MF-Net)."""
    return sum(torch.nn.functional.binary_cross_entropy_with_logits(v, target)
               for v in out.values())
