"""Training throughput, inference latency and memory of a model under a switch combination.

A *switch combination* is a ``+``-joined subset of ``cl`` (channels_last memory format), ``bf16``
or ``fp16`` (autocast), ``compile`` (``torch.compile``), or ``fp32`` for none: exactly the
trainer's ``trainer.channels_last``, ``trainer.amp`` and ``trainer.compile`` switches.

The training step is the trainer's: forward under autocast, Dice + BCE on every output (R2MF-Net:
both stages, ``joint``, gradients through both networks), backward, gradient clipping at 1.0,
AdamW update. Inference is ``eval()`` + ``torch.inference_mode()``, as the Predictor runs it.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.two_unet_cascade import TwoUNetCascade
from r2mfnet.training.losses import DiceCELoss

CASCADE = "two_unet_cascade"
"""Benchmark-only model name of :class:`~r2mfnet.models.two_unet_cascade.TwoUNetCascade`."""

_TOKENS = ("fp32", "cl", "bf16", "fp16", "compile")


@dataclass(frozen=True)
class Switches:
    channels_last: bool = False
    amp: str | None = None  # None | "bf16" | "fp16"
    compile: bool = False

    @classmethod
    def parse(cls, text: str) -> "Switches":
        tokens = [t.strip() for t in text.split("+") if t.strip()]
        bad = [t for t in tokens if t not in _TOKENS]
        if bad or not tokens:
            raise ConfigError(f"switch combination '{text}': use '+'-joined {', '.join(_TOKENS)}")
        amps = [t for t in tokens if t in ("bf16", "fp16")]
        if len(amps) > 1:
            raise ConfigError(f"switch combination '{text}': choose one of bf16 / fp16")
        return cls("cl" in tokens, amps[0] if amps else None, "compile" in tokens)

    @property
    def name(self) -> str:
        parts = (["cl"] if self.channels_last else []) + ([self.amp] if self.amp else []) + (
            ["compile"] if self.compile else [])
        return "+".join(parts) or "fp32"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.amp]


def build_model(name: str, base_channels: int = 16, depth: int = 4, seed: int = 0, **kwargs: Any) -> nn.Module:
    """A registry model (``r2mfnet`` in its ``joint`` stage: both networks learn) or the cascade."""
    torch.manual_seed(seed)
    if name == CASCADE:
        return TwoUNetCascade(base_channels=base_channels, depth=depth, **kwargs)
    from r2mfnet.models import create

    model = create(name, base_channels=base_channels, depth=depth, **kwargs)
    if getattr(model, "has_stages", False):  # a cascade: train both networks at once
        model.set_stage("joint")
    return model


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _prepare(model: nn.Module, switches: Switches, device: torch.device,
             compile_cache_dir: str | None) -> tuple[nn.Module, nn.Module]:
    model = model.to(device)
    if switches.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if switches.compile:
        if compile_cache_dir:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.abspath(os.path.expanduser(compile_cache_dir))
        net = torch.compile(model)
    return model, net


def _inputs(batch: int, size: tuple[int, int], device: torch.device, channels_last: bool,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, *size, generator=g)
    # a centred vertical band, like a spine mask, so Dice has something to overlap with
    y = torch.zeros(batch, 1, *size)
    w = size[1]
    y[..., :, w // 3 : 2 * w // 3] = 1.0
    x, y = x.to(device), y.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def make_train_step(model: nn.Module, switches: Switches, batch: int, size: tuple[int, int],
                    device: torch.device, compile_cache_dir: str | None = None) -> Callable[[], float]:
    """A closure running one full training step of ``model`` (returns the loss)."""
    model, net = _prepare(model, switches, device, compile_cache_dir)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=switches.amp == "fp16")
    loss_fn = DiceCELoss()
    x, y = _inputs(batch, size, device, switches.channels_last)
    dtype = switches.amp_dtype

    def step() -> float:
        with _autocast(device, dtype):
            out = net(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        return float(loss.detach())

    return step


def make_inference(model: nn.Module, switches: Switches, batch: int, size: tuple[int, int],
                   device: torch.device, compile_cache_dir: str | None = None) -> Callable[[], torch.Tensor]:
    """A closure running one ``inference_mode`` forward pass on a batch (returns probabilities)."""
    model, net = _prepare(model, switches, device, compile_cache_dir)
    model.eval()
    x, _ = _inputs(batch, size, device, switches.channels_last)
    dtype = switches.amp_dtype

    @torch.inference_mode()
    def infer() -> torch.Tensor:
        with _autocast(device, dtype):
            logits = net(x)["logits"]
        return torch.sigmoid(logits.float())

    return infer


def state_megabytes(model: nn.Module, optimizer_states: int = 2) -> float:
    """Parameters + gradients + AdamW's two moment buffers, in MB (fp32)."""
    n = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return n * (2 + optimizer_states) / 2**20


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
