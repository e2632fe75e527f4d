"""The models learn: a few dozen Adam steps on bright blobs in noise cut the loss by half."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from r2mfnet.models import create


def blob_dataset(n: int = 4, h: int = 32, w: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    images, masks = [], []
    for _ in range(n):
        cy = torch.randint(8, h - 8, (1,), generator=g).item()
        cx = torch.randint(8, w - 8, (1,), generator=g).item()
        r = 4 + 4 * torch.rand(1, generator=g).item()
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).float()
        image = 0.25 * torch.rand(h, w, generator=g) + 0.6 * mask
        images.append(image)
        masks.append(mask)
    return torch.stack(images)[:, None], torch.stack(masks)[:, None]


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice


@pytest.mark.parametrize("name", ["r2mfnet", "unet"])
def test_model_learns_blobs(name: str) -> None:
    torch.manual_seed(0)
    x, y = blob_dataset()
    model = create(name, base_channels=8, depth=3).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        out = model(x)
        loss = sum(dice_bce(v, y) for v in out.values()) / len(out)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = losses[0], sum(losses[-3:]) / 3
    assert last < 0.5 * first, losses
    model.eval()
    with torch.no_grad():
        pred = torch.sigmoid(model(x)["logits"]) > 0.5
    inter = (pred & (y > 0.5)).sum().item()
    dice = 2 * inter / (pred.sum().item() + y.sum().item())
    assert dice > 0.5, dice
