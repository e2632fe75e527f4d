"""The machine's measured matrix-multiply peak, for the "fraction of peak" of the benchmark.

The peak is not a datasheet number: :func:`matmul_flops_per_s` times square matrix products in
this process, on this device, under the current load, so that "fraction of peak" compares two
measurements taken side by side. The models' own FLOP counts come from
:mod:`r2mfnet.models.flops` (the one counter the model summary uses too).
"""
from __future__ import annotations

import time

import torch


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
