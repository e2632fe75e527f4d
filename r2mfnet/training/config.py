"""Typed schema of the ``trainer`` config group.

Merging the user's config into ``OmegaConf.structured(TrainerConfig)`` rejects unknown keys and
wrong types at start-up, naming the key, before any data is read or output written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TrainerConfig:
    # Budget. ``epochs`` is for single-stage models; R2MF-Net uses the three stage budgets.
    epochs: int = 20
    coarse_epochs: int = 10
    fine_epochs: int = 10
    joint_epochs: int = 0
    # Optimisation (warm-up then decay, per optimiser step).
    optimizer: str = "adamw"  # adamw | adam | sgd (Nesterov momentum)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    warmup_steps: int = 20
    schedule: str = "cosine"  # cosine | poly | constant
    min_lr_factor: float = 0.01
    poly_power: float = 0.9
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    # Hardware and speed switches.
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16/fp16 on CUDA, off on CPU) | off | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    compile_cache_dir: Optional[str] = None
    strategy: str = "auto"  # auto | single | ddp (launch with torchrun)
    # Reproducibility and control.
    seed: int = 0
    val_every: int = 1
    early_stopping_patience: int = 0  # validations without improvement; 0 = off
    early_stopping_min_delta: float = 0.0
    checkpoint_every_steps: int = 0  # extra mid-epoch latest.pt; 0 = epoch ends only
    on_nonfinite: str = "stop"  # stop | skip
    resume: Optional[str] = None  # path to latest.pt, or "auto" to pick up <run>/checkpoints/latest.pt
    progress: bool = True
    log_every_steps: int = 10
    log_images: int = 4
    max_steps: int = 0  # stop (resumably) after this many optimiser steps in total; 0 = no limit
