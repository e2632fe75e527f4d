"""Ablation switches: each changes the parameter count in the expected direction, every
combination builds and trains, and everything off is exactly the U-Net baseline."""
from __future__ import annotations

import itertools

import pytest
import torch

from r2mfnet.models import R2MFNet, UNet, create
from r2mfnet.models.summary import count_parameters

from ._helpers import TINY, outputs_loss

SWITCHES = ("inception", "r2jump", "mcskip", "scse", "cascade")


def n_params(**kw) -> int:
    return count_parameters(create("r2mfnet", **TINY, **kw))


@pytest.mark.parametrize(
    "switch,direction",
    [
        ("inception", +1),  # the double 3x3 block that replaces it is heavier (18 C^2 vs ~7.6 C^2)
        ("r2jump", -1),  # identity skips have no parameters
        ("mcskip", -1),  # no projections, no gates
        ("scse", -1),  # no attention module
        ("cascade", -1),  # the fine network disappears
    ],
)
def test_switch_off_changes_param_count(switch: str, direction: int) -> None:
    full = n_params()
    off = n_params(**{switch: False})
    assert (off - full) * direction > 0, (switch, full, off)


def test_cascade_off_roughly_halves_the_model() -> None:
    full, single = n_params(), n_params(cascade=False)
    assert 0.35 * full < single < 0.6 * full


def test_mcskip_is_inert_without_cascade() -> None:
    assert n_params(cascade=False, mcskip=True) == n_params(cascade=False, mcskip=False)


def test_recurrence_shares_weights() -> None:
    assert n_params(recurrent_steps=1) == n_params(recurrent_steps=3)


def test_more_r2jump_units_more_params() -> None:
    assert n_params(r2jump_units=[3, 2, 1]) > n_params(r2jump_units=[2, 1, 1]) > n_params(
        r2jump_units=[1, 1, 1])


def test_concat_fusion_differs_from_gate() -> None:
    assert n_params(mcskip_fusion="concat") > n_params(mcskip_fusion="gate")


def test_everything_off_is_exactly_unet() -> None:
    torch.manual_seed(3)
    plain = R2MFNet(**TINY, inception=False, r2jump=False, mcskip=False, scse=False,
                    cascade=False).eval()
    torch.manual_seed(3)
    unet = UNet(**TINY).eval()
    assert count_parameters(plain) == count_parameters(unet)
    x = torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        torch.testing.assert_close(plain(x)["logits"], unet(x)["logits"])


@pytest.mark.parametrize("flags", list(itertools.product([True, False], repeat=5)),
                         ids=lambda f: "".join("1" if v else "0" for v in f))
def test_every_combination_builds_and_trains(flags: tuple[bool, ...]) -> None:
    kw = dict(zip(SWITCHES, flags))
    model = create("r2mfnet", **TINY, **kw).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(2, 1, 32, 24)
    y = (torch.rand(2, 1, 32, 24) > 0.5).float()
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x)
    assert ("coarse_logits" in out) == kw["cascade"]
    loss = outputs_loss(out, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert model.has_stages == kw["cascade"]
