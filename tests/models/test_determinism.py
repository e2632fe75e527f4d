"""Eval output does not depend on batch composition; seeded models are reproducible."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.models import create

from ._helpers import ALL_MODELS, TINY, outputs_loss


def _check_batch_independent(model: torch.nn.Module) -> None:
    """Tolerance 2e-4: convolution kernels pick different algorithms per batch size, which moves
    float32 results by ~1e-5 relative (seen up to 5e-5 in R2U-Net); real batch dependence, e.g.
    BatchNorm in train mode, changes outputs by O(0.1)."""
    model.eval()
    batch = torch.rand(3, 1, 48, 24)
    with torch.no_grad():
        together = model(batch)
        alone = model(batch[1:2])
        others = model(torch.cat([batch[1:2], torch.rand(4, 1, 48, 24) * 5.0]))
    for key in together:
        torch.testing.assert_close(alone[key][0], together[key][1], atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(others[key][0], together[key][1], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_eval_output_independent_of_batch(name: str) -> None:
    _check_batch_independent(create(name, **TINY))


@pytest.mark.parametrize("name", ["r2mfnet", "unet"])
def test_eval_batchnorm_independent_of_batch_after_training(name: str) -> None:
    model = create(name, norm="batch", **TINY).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    for _ in range(2):  # move the running statistics away from their initial values
        x = torch.rand(4, 1, 48, 24)
        outputs_loss(model(x), (x > 0.5).float()).backward()
        opt.step()
        opt.zero_grad()
    _check_batch_independent(model)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_seeded_model_is_reproducible(name: str) -> None:
    x = torch.rand(2, 1, 40, 24)
    outs, states = [], []
    for _ in range(2):
        torch.manual_seed(123)
        model = create(name, **TINY).eval()
        states.append(model.state_dict())
        with torch.no_grad():
            outs.append(model(x))
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key])
    torch.manual_seed(124)
    other = create(name, **TINY)
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in states[0].items())
