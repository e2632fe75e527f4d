"""R2MF-Net stages (coarse / fine / joint) and the coarse/fine parameter split."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.errors import ConfigError
from r2mfnet.models import create

from ._helpers import TINY, outputs_loss


def _grads(model, x, y):
    model.zero_grad(set_to_none=True)
    outputs_loss(model(x), y).backward()
    coarse = [p.grad is not None for p in model.coarse_parameters()]
    fine = [p.grad is not None for p in model.fine_parameters()]
    return coarse, fine


def test_parameter_split_is_a_partition() -> None:
    model = create("r2mfnet", **TINY)
    coarse = {id(p) for p in model.coarse_parameters()}
    fine = {id(p) for p in model.fine_parameters()}
    assert coarse and fine and not coarse & fine
    assert coarse | fine == {id(p) for p in model.parameters()}


def test_stages_run_and_train_the_right_network() -> None:
    model = create("r2mfnet", **TINY).train()
    x, y = torch.rand(2, 1, 32, 24), (torch.rand(2, 1, 32, 24) > 0.5).float()

    model.set_stage("coarse")
    out = model(x)
    assert set(out) == {"logits", "coarse_logits"} and out["logits"] is out["coarse_logits"]
    coarse, fine = _grads(model, x, y)
    assert all(coarse) and not any(fine)

    model.set_stage("fine")
    assert not model.coarse.training and model.fine.training  # frozen coarse network
    coarse, fine = _grads(model, x, y)
    assert not any(coarse) and all(fine)
    model.train()
    assert not model.coarse.training  # train() keeps the coarse network frozen in "fine"

    model.set_stage("joint")
    assert model.coarse.training
    coarse, fine = _grads(model, x, y)
    assert all(coarse) and all(fine)


def test_coarse_stage_output_equals_joint_coarse_logits() -> None:
    model = create("r2mfnet", **TINY).eval()
    x = torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        joint = model(x)
        model.set_stage("coarse")
        coarse = model(x)
    torch.testing.assert_close(coarse["logits"], joint["coarse_logits"])


def test_bad_stage_raises() -> None:
    with pytest.raises(ConfigError):
        create("r2mfnet", **TINY).set_stage("both")


def test_no_cascade_has_no_stages() -> None:
    model = create("r2mfnet", cascade=False, **TINY)
    assert model.has_stages is False
    assert list(model.fine_parameters()) == []
    assert len(list(model.coarse_parameters())) == len(list(model.parameters()))
    model.set_stage("coarse")
    assert set(model(torch.rand(1, 1, 16, 16))) == {"logits"}


@pytest.mark.parametrize("name", ["unet", "r2unet", "attention_unet", "unetpp"])
def test_baselines_have_no_stages(name: str) -> None:
    assert create(name, **TINY).has_stages is False


def test_fine_network_refines_the_coarse_logits_residually() -> None:
    """fine_residual=True: with a silent fine head the cascade returns exactly the coarse logits,
    so the fine stage starts from the coarse result; fine_residual=False predicts from scratch."""
    x = torch.rand(1, 1, 40, 24)
    for residual in (True, False):
        torch.manual_seed(0)
        model = create("r2mfnet", fine_residual=residual, **TINY).eval()
        torch.nn.init.zeros_(model.fine.head.weight)
        torch.nn.init.zeros_(model.fine.head.bias)
        with torch.no_grad():
            out = model(x)
        if residual:
            torch.testing.assert_close(out["logits"], out["coarse_logits"])
        else:
            assert torch.count_nonzero(out["logits"]) == 0


def test_fine_residual_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="fine_residual"):
        create("r2mfnet", fine_residual="yes", **TINY)
