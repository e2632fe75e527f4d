"""A backward pass reaches every parameter of every model (non-None, finite, not all zero)."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.models import create
from ._helpers import ALL_MODELS, TINY, outputs_loss

CONFIGS = [(name, {}) for name in ALL_MODELS] + [
    ("r2mfnet", {"mcskip_fusion": "concat"}),
    ("r2mfnet", {"norm": "batch"}),
    ("r2mfnet", {"mcskip_levels": 1, "recurrent_steps": 1}),
]


@pytest.mark.parametrize("name,extra", CONFIGS, ids=lambda v: str(v))
def test_backward_reaches_every_parameter(name: str, extra: dict) -> None:
    model = create(name, **TINY, **extra).train()
    x = torch.rand(2, 1, 48, 24)
    y = (torch.rand(2, 1, 48, 24) > 0.5).float()
    outputs_loss(model(x), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"
