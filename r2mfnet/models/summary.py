"""Parameter / GFLOP table of every model, and a CPU training-step timing of R2MF-Net vs 2x U-Net.

``python scripts/model_summary.py`` (:mod:`r2mfnet.apps.model_summary`) prints a markdown table at input 1x1x512x256 (defaults:
``base_channels=16, depth=4``). FLOPs are those of one eval-mode forward pass counted by
:func:`r2mfnet.models.flops.forward_flops` (the benchmark's counter too): convolutions, transposed
convolutions and matrix products, at **2 FLOPs per multiply-accumulate** (GFLOPs = 2 x GMACs);
normalisation, activations, pooling and interpolation are not counted (they are memory-bound and
small next to the convolutions).

``step_time=true`` also times one Adam training step (forward, BCE
on every output, backward, update) at batch 4 x 1 x 256 x 128 for R2MF-Net, for the cascade of two
plain U-Nets (:class:`~r2mfnet.models.two_unet_cascade.TwoUNetCascade`, the benchmark's reference)
and for one U-Net, interleaving the models and reporting medians so that load from other
processes hits all of them alike.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from r2mfnet.models.flops import forward_flops
from r2mfnet.models.registry import available_models, create
from r2mfnet.models.two_unet_cascade import TwoUNetCascade

CASCADE_REFERENCE = "2x unet (cascade)"
"""Row name of the reference the issue budgets R2MF-Net against: two plain U-Nets in cascade of
the same width (:class:`~r2mfnet.models.two_unet_cascade.TwoUNetCascade`, the benchmark's
``two_unet_cascade``)."""


def build(name: str, **kwargs: Any) -> nn.Module:
    """:func:`create`, plus the :data:`CASCADE_REFERENCE` pseudo-model."""
    if name == CASCADE_REFERENCE:
        return TwoUNetCascade(**kwargs)
    return create(name, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_gflops(model: nn.Module, input_shape: Sequence[int] = (1, 1, 512, 256)) -> float:
    """GFLOPs (2 x GMACs) of one eval-mode forward pass on a zero input of ``input_shape``."""
    return forward_flops(model, tuple(input_shape)) / 1e9


def summarize(
    names: Sequence[str] | None = None,
    input_shape: Sequence[int] = (1, 1, 512, 256),
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """One row per model: ``{"model", "params", "gflops"}``."""
    names = list(names) if names is not None else [*available_models(), CASCADE_REFERENCE]
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = build(name, in_channels=input_shape[1], **kwargs)
        rows.append({"model": name, "params": count_parameters(model),
                     "gflops": count_gflops(model, input_shape)})
    return rows


def to_markdown(rows: Sequence[dict[str, Any]], input_shape: Sequence[int] = (1, 1, 512, 256)) -> str:
    """Markdown table of :func:`summarize` rows."""
    shape = "x".join(str(s) for s in input_shape)
    lines = [f"| model | params (M) | GFLOPs @ {shape} |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params'] / 1e6:.3f} | {r['gflops']:.2f} |")
    return "\n".join(lines)


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    out = model(x)
    loss = sum(F.binary_cross_entropy_with_logits(v, y) for v in out.values())
    loss.backward()
    opt.step()


def time_train_steps(
    names: Sequence[str],
    input_shape: Sequence[int] = (4, 1, 256, 128),
    repeats: int = 5,
    warmup: int = 1,
    **kwargs: Any,
) -> dict[str, float]:
    """Median seconds per training step for each model, measured interleaved."""
    torch.manual_seed(0)
    x = torch.rand(*input_shape)
    y = (torch.rand(input_shape[0], 1, *input_shape[2:]) > 0.5).float()
    setups = {}
    for name in names:
        model = build(name, in_channels=input_shape[1], **kwargs).train()
        setups[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    for model, opt in setups.values():
        for _ in range(warmup):
            _train_step(model, opt, x, y)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name, (model, opt) in setups.items():
            start = time.perf_counter()
            _train_step(model, opt, x, y)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
