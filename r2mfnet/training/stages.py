"""Stage planning: R2MF-Net trains its coarse network, then its fine network; others train once.

Why stages: the fine network's input includes the coarse probability map, which is only
informative once the coarse network has learnt. Freezing the coarse network in the fine stage
(the default) keeps that input fixed while the fine network learns to refine it, and halves the
backward cost. An optional ``joint`` stage then fine-tunes both with both outputs supervised.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from r2mfnet.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    """One phase of training: which part of the model runs and which part learns."""

    name: str  # "coarse", "fine", "joint" or "single"
    epochs: int

    @property
    def model_stage(self) -> str:
        return "joint" if self.name == "single" else self.name


def plan_stages(model: nn.Module, epochs: int, coarse_epochs: int, fine_epochs: int, joint_epochs: int) -> list[Stage]:
    """The stages to run for ``model``; stages with zero epochs are left out."""
    if getattr(model, "has_stages", False):
        stages = [Stage("coarse", coarse_epochs), Stage("fine", fine_epochs), Stage("joint", joint_epochs)]
        stages = [s for s in stages if s.epochs > 0]
        if not stages:
            raise ConfigError("trainer.coarse_epochs, fine_epochs and joint_epochs are all 0: nothing to train")
        return stages
    if epochs <= 0:
        raise ConfigError(f"trainer.epochs must be positive, got {epochs}")
    return [Stage("single", epochs)]


def trainable_parameters(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    """Parameters the optimiser updates in ``stage`` (the coarse ones are frozen in ``fine``)."""
    if stage.name == "coarse":
        return list(model.coarse_parameters())
    if stage.name == "fine":
        return list(model.fine_parameters())
    return list(model.parameters())


def apply_stage(model: nn.Module, stage: Stage, train: bool = True) -> None:
    """Switch the model to ``stage``: forward path, ``requires_grad`` flags and train/eval modes.

    The frozen coarse network is kept in eval mode during the fine stage so that its
    normalisation statistics stay those it was validated with.
    """
    if hasattr(model, "set_stage"):
        model.set_stage(stage.model_stage)
    learn = {id(p) for p in trainable_parameters(model, stage)}
    for p in model.parameters():
        p.requires_grad_(id(p) in learn)
    model.train(train)
    if train and stage.name == "fine" and hasattr(model, "coarse"):
        model.coarse.eval()
