"""R2MF-Net exports for inference with torch.export and matches eager to 1e-4.

(The ONNX route, with the deploy extra, is tested in tests/deploy.)
"""
from __future__ import annotations

import pytest
import torch

from r2mfnet.models import create

from ._helpers import TINY


@pytest.mark.parametrize(
    "extra",
    [{}, {"mcskip_fusion": "concat", "norm": "batch", "depth": 2, "r2jump": False}],
    ids=["default", "concat-batchnorm-small"],  # the second kept small: export time ~ graph size
)
def test_r2mfnet_torch_export_matches_eager(extra: dict) -> None:
    model = create("r2mfnet", **{**TINY, **extra}).eval()
    x = torch.rand(1, 1, 97, 45)  # odd size: the in-model pad and crop are exported too
    program = torch.export.export(model, (x,))
    exported = program.module()
    with torch.no_grad():
        eager = model(x)
        got = exported(x)
    assert set(got) == {"logits", "coarse_logits"}
    for key in eager:
        torch.testing.assert_close(got[key], eager[key], atol=1e-4, rtol=1e-4)
    x2 = torch.rand(1, 1, 97, 45)
    with torch.no_grad():
        torch.testing.assert_close(exported(x2)["logits"], model(x2)["logits"],
                                   atol=1e-4, rtol=1e-4)
