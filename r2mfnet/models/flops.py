"""FLOP counts of a model: the one counter behind the model summary and the benchmark.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` at **2 FLOPs per
multiply-accumulate** (GFLOPs = 2 x GMACs): convolutions, transposed convolutions and matrix
products, forward and (for a training step) backward. Normalisation, activations, pooling,
resizing, the loss and the optimiser update are not counted: they are memory-bound and small next
to the convolutions, so a FLOP/s computed from these counts is the rate of useful convolution work.

It sits in ``models`` (torch only) so that :mod:`r2mfnet.models.summary`, the experiment runner
and :mod:`r2mfnet.benchmark` all import it downwards and report the same numbers.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "forward_flops", "train_step_flops"]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs executed by ``fn()`` (forward and any backward it runs)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one eval-mode forward pass on a zero input of ``input_shape`` (batch included)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: model(torch.zeros(*input_shape)))
    finally:
        model.train(was_training)


def train_step_flops(model: nn.Module, input_shape: tuple[int, ...],
                     loss_fn: Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]) -> int:
    """FLOPs of forward + loss + backward in train mode (gradients are discarded afterwards)."""
    was_training = model.training
    model.train()
    x = torch.rand(*input_shape)
    y = (torch.rand(input_shape[0], 1, *input_shape[2:]) > 0.5).float()

    def step() -> None:
        loss_fn(model(x), y).backward()

    try:
        return count_flops(step)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
