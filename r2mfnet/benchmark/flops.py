"""FLOP counts of the models and the machine's measured matrix-multiply peak.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` at **2 FLOPs per
multiply-accumulate**: convolutions, transposed convolutions and matrix products, forward and
(for a training step) backward. Normalisation, activations, pooling, resizing, the loss and the
optimiser update are not counted: they are memory-bound and small next to the convolutions, so
the *achieved FLOP/s* computed from these counts is the rate of useful convolution work.

The peak is not a datasheet number: :func:`matmul_flops_per_s` times square matrix products in
this process, on this device, under the current load, so that "fraction of peak" compares two
measurements taken side by side.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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


def matmul_flops_per_s(dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 3,
                       device: str | torch.device = "cpu") -> float:
    """Best FLOP/s of ``repeats`` ``n x n @ n x n`` products (2 n^3 FLOPs each) after one warm-up."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def matmul_rates(dtype: torch.dtype = torch.float32, n: int = 1024, repeats: int = 3,
                 device: str | torch.device = "cpu") -> tuple[float, float]:
    """Best ``(FLOP per wall second, FLOP per process-CPU second)`` of ``repeats`` square products."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best_wall = best_cpu = float("inf")
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, max(time.process_time() - cpu_start, 1e-9))
    return 2.0 * n**3 / best_wall, 2.0 * n**3 / best_cpu


def dtype_supported(dtype: torch.dtype, device: str | torch.device = "cpu") -> bool:
    """Whether a small matmul in ``dtype`` runs on ``device`` (fp16 on CPU may not)."""
    try:
        a = torch.ones(8, 8, device=device, dtype=dtype)
        torch.mm(a, a)
        return True
    except (RuntimeError, TypeError):
        return False
