"""Output shapes for every model and input size (square, tall, odd), several classes/channels."""
from __future__ import annotations

import pytest
import torch

from r2mfnet.models import create
from ._helpers import ALL_MODELS, TINY


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("hw", [(64, 64), (96, 48), (97, 45), (5, 3)])
def test_output_shape_any_size(name: str, hw: tuple[int, int]) -> None:
    model = create(name, **TINY).eval()
    x = torch.rand(2, 1, *hw)
    with torch.no_grad():
        out = model(x)
    expected_keys = {"logits", "coarse_logits"} if name == "r2mfnet" else {"logits"}
    assert set(out) == expected_keys
    for v in out.values():
        assert v.shape == (2, 1, *hw)
        assert torch.isfinite(v).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_many_classes_and_channels(name: str) -> None:
    model = create(name, in_channels=3, num_classes=18, **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 40, 24))
    for v in out.values():
        assert v.shape == (1, 18, 40, 24)


def test_r2mfnet_without_cascade_returns_only_logits() -> None:
    model = create("r2mfnet", cascade=False, **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 33, 17))
    assert set(out) == {"logits"} and out["logits"].shape == (1, 1, 33, 17)


def test_padding_does_not_leak_into_crop() -> None:
    """An odd-sized input gives the same prediction as the same image zero-padded by the caller
    (the model pads bottom/right with zeros itself)."""
    model = create("r2mfnet", **TINY).eval()
    x = torch.rand(1, 1, 45, 27)
    padded = torch.nn.functional.pad(x, (0, 32 - 27, 0, 48 - 45))  # to multiples of 2**3
    with torch.no_grad():
        a = model(x)["logits"]
        b = model(padded)["logits"][..., :45, :27]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
