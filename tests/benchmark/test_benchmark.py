"""The benchmark harness runs end to end at toy size and reports every number the issue asks for."""
from __future__ import annotations

import json

import pytest
import torch

from r2mfnet.benchmark import peak as F
from r2mfnet.benchmark.model_bench import Switches, build_model
from r2mfnet.errors import ConfigError
from r2mfnet.models import create
from r2mfnet.models.flops import forward_flops, train_step_flops
from r2mfnet.models.two_unet_cascade import TwoUNetCascade
from tests.helpers import ROOT


def test_switch_names_round_trip():
    assert Switches.parse("fp32") == Switches()
    sw = Switches.parse("cl+bf16+compile")
    assert (sw.channels_last, sw.amp, sw.compile, sw.name) == (True, "bf16", True, "cl+bf16+compile")
    with pytest.raises(ConfigError):
        Switches.parse("bf16+fp16")
    with pytest.raises(ConfigError):
        Switches.parse("turbo")


def test_cascade_is_two_unets_and_costs_twice_one_plus_the_extra_input():
    cascade = TwoUNetCascade(base_channels=4, depth=2)
    out = cascade(torch.zeros(1, 1, 32, 16))
    assert set(out) == {"logits", "coarse_logits"} and out["logits"].shape == (1, 1, 32, 16)
    one = forward_flops(create("unet", base_channels=4, depth=2), (1, 1, 32, 16))
    two = forward_flops(cascade, (1, 1, 32, 16))
    assert 2 * one < two < 2.1 * one  # the fine U-Net's first conv reads 2 channels
    # a training step counts forward + backward (about 3x the forward FLOPs)
    r2 = build_model("r2mfnet", base_channels=4, depth=2)
    from r2mfnet.training.losses import DiceCELoss

    fwd = forward_flops(r2, (2, 1, 32, 16))
    train = train_step_flops(r2, (2, 1, 32, 16), DiceCELoss())
    assert 2.0 * fwd < train < 3.2 * fwd
    assert F.matmul_flops_per_s(torch.float32, 64, repeats=1) > 0


def _benchmark_config(overrides: list[str]):
    """``configs/benchmark.yaml`` composed as ``scripts/benchmark.py`` would compose it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("benchmark", overrides=overrides)


def test_benchmark_script_writes_json_and_table(tmp_path, capsys):
    from r2mfnet.apps.benchmark import run

    out = tmp_path / "b" / "bench.json"
    cfg = _benchmark_config([
        "models=[r2mfnet,two_unet_cascade]", "image_size=[32,16]", "batch=2", "base_channels=4", "depth=2",
        "switches=[fp32,cl,bf16]", "rounds=2", "threads=1", "data_cases=1",
        f"data_cache_dir={tmp_path / 'cache'}", f"output_file={out}"])
    run(cfg)
    result = json.loads(out.read_text())
    table = capsys.readouterr().out
    assert out.with_suffix(".md").read_text().strip() == table.strip()
    models = result["models"]
    assert models["r2mfnet"]["gflops_train_per_image"] > models["r2mfnet"]["gflops_forward_per_image"] > 0
    tasks = {r["task"] for r in result["train"]}
    assert {"train r2mfnet fp32", "train r2mfnet cl", "train two_unet_cascade fp32"} <= tasks
    for row in result["train"]:
        assert row["images_per_s"] > 0 and 0 < row["fp32_peak_fraction"] < 5 and row["peak_mb"] >= 0
    assert {(r["model"], r["batch"]) for r in result["inference"]} >= {("r2mfnet", 1), ("r2mfnet", 2)}
    data = result["data"]["images_per_s_per_worker"]
    assert set(data) == {"decode+preprocess", "cached", "cached+augment", "decode+preprocess+augment"}
    assert all(rate > 0 for rate in data.values())  # measured, not compared: timings vary with load
    from r2mfnet.benchmark.runner import TARGETS

    assert set(result["targets"]) == set(TARGETS)
    for key in ("r2mfnet_vs_cascade", "data_vs_training", "best_fp32_peak_fraction"):
        target = result["targets"][key]
        assert result["ratios"][key] > 0 and target["measured"] == result["ratios"][key]
        assert target["target"] == TARGETS[key][1]
        assert target["met"] is (result["ratios"][key] >= TARGETS[key][1])  # the rule, whatever the timing
        # and the table says what the JSON says
        assert ("yes" if target["met"] else "**no**") in next(line for line in table.splitlines()
                                                             if line.startswith(f"| {TARGETS[key][0]}"))
    # bf16 is measured where the hardware has it, otherwise reported as skipped, never silently lost
    assert "train r2mfnet bf16" in tasks or any("bf16" in k for k in result["errors"])
    assert "| target (issue 7) |" in table and "two_unet_cascade" in table


def test_bad_arguments_are_config_errors():
    from r2mfnet.apps.benchmark import bench_config

    with pytest.raises(ConfigError, match="primary=r2mfnet must be one of"):
        bench_config(_benchmark_config(["models=[unet]", "primary=r2mfnet"]))
    with pytest.raises(ConfigError, match=r"image_size: an image size is written \[H, W\]"):
        bench_config(_benchmark_config(["image_size=big"]))
