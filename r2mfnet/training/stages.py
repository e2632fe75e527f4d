"""Stage planning: which stages a model trains in, with which budget, and what learns in each.

The model says which stages it has (:meth:`~r2mfnet.models.base.SegmentationModel.
training_stages`) and what learns in each (``stage_parameters``); this module only maps stage
names to the trainer's epoch budgets and switches the model, so no model is named here.

Why stages (R2MF-Net): the fine network's input includes the coarse probability map, which is
only informative once the coarse network has learnt. Freezing the coarse network in the fine
stage keeps that input fixed while the fine network learns to refine it, and halves the backward
cost. An optional ``joint`` stage then fine-tunes both with both outputs supervised.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.base import SegmentationModel
from r2mfnet.training.config import TrainerConfig

BUDGET_KEYS = {"single": "epochs", "coarse": "coarse_epochs", "fine": "fine_epochs", "joint": "joint_epochs"}
"""The trainer option that holds each stage's epoch budget."""


@dataclass(frozen=True)
class Stage:
    """One phase of training: which part of the model runs and which part learns."""

    name: str  # one of the model's training_stages(): "single", or "coarse", "fine", "joint"
    epochs: int


def plan_stages(model: SegmentationModel, config: TrainerConfig) -> list[Stage]:
    """The model's stages with their budgets; stages with zero epochs are left out."""
    names = model.training_stages()
    unknown = [n for n in names if n not in BUDGET_KEYS]
    if unknown:
        raise ConfigError(f"model stage(s) {unknown} have no trainer budget; known: {sorted(BUDGET_KEYS)}")
    stages = [Stage(n, int(getattr(config, BUDGET_KEYS[n]))) for n in names]
    stages = [s for s in stages if s.epochs > 0]
    if not stages:
        keys = ", ".join(f"trainer.{BUDGET_KEYS[n]}" for n in names)
        raise ConfigError(f"{keys} {'is' if len(names) == 1 else 'are all'} 0: nothing to train")
    return stages


def trainable_parameters(model: SegmentationModel, stage: Stage) -> list[nn.Parameter]:
    """Parameters the optimiser updates in ``stage``."""
    return model.stage_parameters(stage.name)


def apply_stage(model: SegmentationModel, stage: Stage, train: bool = True) -> None:
    """Switch the model to ``stage``: forward path, ``requires_grad`` flags and train/eval mode
    (a model keeps its frozen parts in eval mode itself, in ``train()``)."""
    model.set_stage(stage.name)
    learn = {id(p) for p in trainable_parameters(model, stage)}
    for p in model.parameters():
        p.requires_grad_(id(p) in learn)
    model.train(train)
