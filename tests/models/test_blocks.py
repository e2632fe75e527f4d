"""Building blocks: SCSE-Lite budget, R2-Jump schedule, MC-Skip sources and gate, Inception."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.models import create
from r2mfnet.models.blocks import (MCSkip, R2Jump, RecurrentConv, InceptionBlock, SCSELite,
                                   default_units, num_groups, source_levels, split_channels)
from r2mfnet.models.summary import count_parameters


@pytest.mark.parametrize("kw", [{}, {"base_channels": 8, "depth": 3},
                                {"num_classes": 18, "in_channels": 3}])
def test_scse_lite_under_one_percent(kw: dict) -> None:
    model = create("r2mfnet", **kw)
    scse = sum(count_parameters(m) for m in model.modules() if isinstance(m, SCSELite))
    assert scse > 0
    assert scse < 0.01 * count_parameters(model), (scse, count_parameters(model))


def test_scse_shape_and_near_identity_scale() -> None:
    m = SCSELite(64)
    x = torch.rand(2, 64, 8, 4)
    y = m(x)
    assert y.shape == x.shape
    ratio = (y / x.clamp_min(1e-6)).mean().item()
    assert 0.5 < ratio < 1.5  # c + s starts near 1


@pytest.mark.parametrize("depth", range(1, 8))
def test_default_units_more_on_shallow_skips(depth: int) -> None:
    units = default_units(depth)
    assert len(units) == depth and min(units) >= 1
    assert all(a >= b for a, b in zip(units, units[1:]))
    if depth > 1:
        assert units[0] > units[-1]
    assert default_units(4) == [2, 1, 1, 1]


def test_r2mfnet_skip_units_follow_schedule() -> None:
    model = create("r2mfnet", base_channels=4, depth=4)
    for net in (model.coarse, model.fine):
        assert [len(s.units) for s in net.skips] == [2, 1, 1, 1]
        assert all(isinstance(s, R2Jump) for s in net.skips)


def test_recurrent_conv_applies_one_conv_repeatedly() -> None:
    m = RecurrentConv(8, steps=2)
    calls = []
    m.conv.register_forward_hook(lambda *a: calls.append(1))
    m(torch.rand(1, 8, 8, 8))
    assert len(calls) == 3  # h0 = f(x), then t = 2 recurrent steps


def test_mcskip_sources_and_gate() -> None:
    assert source_levels(0, 4, 3) == [0, 1, 2]
    assert source_levels(3, 4, 3) == [3, 4]
    channels = [4, 8, 16, 32]
    m = MCSkip(8, channels, [1, 2, 3], fusion="gate")
    assert torch.allclose(m.gate, torch.full((8,), 0.1))
    context = [torch.rand(1, c, 32 // 2**i, 16 // 2**i) for i, c in enumerate(channels)]
    x = torch.rand(1, 8, 16, 8)
    assert m(x, context).shape == x.shape
    with torch.no_grad():
        m.gate.zero_()
    torch.testing.assert_close(m(x, context), x)  # gate 0 = no cross-stage input
    c = MCSkip(8, channels, [1, 2], fusion="concat")
    assert c(x, context).shape == x.shape


def test_fine_network_gets_mcskip_only_with_cascade() -> None:
    model = create("r2mfnet", base_channels=4, depth=3)
    assert model.fine.fusions is not None and model.coarse.fusions is None
    assert [m.sources for m in model.fine.fusions] == [[0, 1, 2], [1, 2, 3], [2, 3]]


@pytest.mark.parametrize("cin,cout", [(1, 4), (8, 8), (12, 6), (5, 7)])
def test_inception_block_shapes(cin: int, cout: int) -> None:
    block = InceptionBlock(cin, cout)
    assert block(torch.rand(2, cin, 9, 7)).shape == (2, cout, 9, 7)
    assert sum(split_channels(cout, 4)) == cout


def test_inception_cheaper_than_double_conv() -> None:
    from r2mfnet.models.blocks import ConvBlock
    assert count_parameters(InceptionBlock(64, 64)) < 0.5 * count_parameters(ConvBlock(64, 64))


def test_num_groups() -> None:
    assert [num_groups(c) for c in (1, 4, 6, 16, 256, 7)] == [1, 4, 6, 8, 8, 7]
