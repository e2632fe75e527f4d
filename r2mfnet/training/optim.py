"""The optimiser named by ``trainer.optimizer``.

AdamW is the default because every result in docs/ was measured with it; Adam and SGD with
Nesterov momentum are there for recipes that want them (nnU-Net trains with SGD), chosen by
config so that the trainer never names an optimiser.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from r2mfnet.errors import ConfigError

OPTIMIZERS = ("adamw", "adam", "sgd")


def build_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """``trainer.optimizer`` with the trainer's learning rate and weight decay."""
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum,
                               nesterov=momentum > 0)
    raise ConfigError(f"trainer.optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
