"""The staged-model protocol (models/base.py) as the trainer and the checkpoint loader use it."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.checkpoint import model_config_of, resolve_model_config
from r2mfnet.errors import ConfigError
from r2mfnet.models import create
from r2mfnet.training.config import TrainerConfig
from r2mfnet.training.optim import build_optimizer
from r2mfnet.training.stages import Stage, apply_stage, plan_stages

TINY = {"base_channels": 4, "depth": 2}


def test_one_network_models_have_the_single_stage_and_train_everything():
    model = create("unet", **TINY)
    assert model.training_stages() == ("single",) and model.has_stages is False
    assert model.stage_parameters("single") == list(model.parameters())
    assert plan_stages(model, TrainerConfig(epochs=3)) == [Stage("single", 3)]
    with pytest.raises(ConfigError, match="trainer.epochs is 0"):
        plan_stages(model, TrainerConfig(epochs=0))


def test_the_cascade_plans_its_stages_from_their_own_budgets():
    model = create("r2mfnet", **TINY)
    assert model.training_stages() == ("coarse", "fine", "joint")
    plan = plan_stages(model, TrainerConfig(epochs=99, coarse_epochs=2, fine_epochs=0, joint_epochs=1))
    assert plan == [Stage("coarse", 2), Stage("joint", 1)]
    with pytest.raises(ConfigError, match="are all 0"):
        plan_stages(model, TrainerConfig(coarse_epochs=0, fine_epochs=0, joint_epochs=0))
    no_cascade = create("r2mfnet", cascade=False, **TINY)
    assert no_cascade.training_stages() == ("single",)
    assert plan_stages(no_cascade, TrainerConfig(epochs=4)) == [Stage("single", 4)]


def test_the_fine_stage_learns_only_the_fine_network_and_keeps_the_coarse_one_in_eval_mode():
    model = create("r2mfnet", **TINY)
    apply_stage(model, Stage("fine", 1), train=True)
    fine = {id(p) for p in model.fine_parameters()}
    assert all(p.requires_grad == (id(p) in fine) for p in model.parameters())
    assert model.training and model.fine.training and not model.coarse.training
    model.eval()
    model.train()  # e.g. after validation: the frozen part must stay frozen
    assert not model.coarse.training
    apply_stage(model, Stage("joint", 1), train=True)
    assert model.coarse.training and all(p.requires_grad for p in model.parameters())


def test_stored_configs_are_upgraded_and_resolved_by_their_model_class():
    old = {"name": "r2mfnet", "num_classes": 1, "base_channels": 4}
    assert model_config_of({"version": 1, "model_config": old})["fine_residual"] is False
    assert "fine_residual" not in model_config_of({"version": 2, "model_config": old})
    assert model_config_of({"version": 1, "model_config": {"name": "unet"}}) == {"name": "unet"}
    assert resolve_model_config({"name": "r2mfnet", "num_classes": 18, "fine_coords": None}) == {
        "name": "r2mfnet", "num_classes": 18, "coarse_classes": 18, "fine_coords": True}
    assert resolve_model_config({"name": "not_installed", "x": None}) == {"name": "not_installed", "x": None}


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                       ("sgd", torch.optim.SGD)])
def test_the_optimiser_comes_from_the_config(name, cls):
    params = [torch.nn.Parameter(torch.ones(2))]
    optimizer = build_optimizer(name, params, lr=0.1, weight_decay=0.0, momentum=0.9)
    assert isinstance(optimizer, cls) and optimizer.param_groups[0]["lr"] == 0.1
    params[0].grad = torch.ones(2)
    optimizer.step()
    assert torch.all(params[0] < 1)
    with pytest.raises(ConfigError, match="trainer.optimizer"):
        build_optimizer("lion", params, 0.1, 0.0)
