"""Learning-rate schedule: linear warm-up, then cosine or polynomial decay, per optimiser step.

Defined as a ``LambdaLR`` factor so that its state is just the step counter, which makes resumed
runs follow exactly the same curve.
"""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from r2mfnet.errors import ConfigError


def lr_factor(step: int, total_steps: int, warmup_steps: int, kind: str, min_factor: float, power: float) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif kind == "poly":
        decay = (1.0 - progress) ** power
    elif kind == "constant":
        decay = 1.0
    else:
        raise ConfigError(f"trainer.schedule must be 'cosine', 'poly' or 'constant', got '{kind}'")
    return min_factor + (1.0 - min_factor) * decay


def build_scheduler(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    kind: str = "cosine",
    min_factor: float = 0.01,
    power: float = 0.9,
) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor`; call ``step()`` after every optimiser step."""
    lr_factor(0, total_steps, warmup_steps, kind, min_factor, power)  # validates ``kind`` now
    return LambdaLR(
        optimizer,
        lambda step: lr_factor(step, total_steps, warmup_steps, kind, min_factor, power),
    )
