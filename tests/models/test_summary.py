"""The params/GFLOPs summary module (tiny sizes here; the README table uses 512x256)."""
from __future__ import annotations

import torch

from r2mfnet.models import available_models
from omegaconf import OmegaConf

from r2mfnet.apps.model_summary import run
from r2mfnet.models.summary import (CASCADE_REFERENCE, count_gflops, summarize, time_train_steps,
                                    to_markdown)


def test_gflops_convention_is_two_flops_per_mac() -> None:
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    assert abs(count_gflops(conv, (1, 1, 4, 4)) - 2 * 16 * 9 / 1e9) < 1e-15


def test_summary_table_lists_every_model() -> None:
    shape = (1, 1, 64, 32)
    rows = summarize(input_shape=shape, base_channels=4, depth=3)
    assert [r["model"] for r in rows] == [*available_models(), CASCADE_REFERENCE]
    by = {r["model"]: r for r in rows}
    assert all(r["params"] > 0 and r["gflops"] > 0 for r in rows)
    # the cascade of two U-Nets costs about twice one U-Net
    assert 1.9 < by[CASCADE_REFERENCE]["gflops"] / by["unet"]["gflops"] < 2.2
    table = to_markdown(rows, shape)
    assert "1x1x64x32" in table and all(f"| {n} |" in table for n in by)


def test_cli_and_step_timing(capsys) -> None:
    run(OmegaConf.create({"image_size": [32, 16], "base_channels": 4, "depth": 2,
                          "step_time": False, "repeats": 1, "threads": 0}))
    assert "| r2mfnet |" in capsys.readouterr().out
    t = time_train_steps(["unet"], input_shape=(1, 1, 32, 16), repeats=1, warmup=0,
                         base_channels=4, depth=2)
    assert t["unet"] > 0
