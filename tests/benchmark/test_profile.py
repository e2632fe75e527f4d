"""``benchmark.py mode=profile``: every part of a model is found, timed and FLOP-counted, the
totals add up, and the command writes its tables."""
from __future__ import annotations

import json

import torch

from r2mfnet.benchmark.model_bench import Switches, _inputs, make_train_step
from r2mfnet.benchmark.step_profile import network_parts, profile_train_step, summarise
from r2mfnet.models import create
from r2mfnet.models.flops import count_flops
from tests.helpers import run_script

TINY = dict(base_channels=4, depth=2)


def test_parts_of_r2mfnet_are_both_networks_with_their_blocks_skips_and_fusions() -> None:
    model = create("r2mfnet", **TINY)
    names = {name: kind for name, kind, _ in network_parts(model)}
    for net in ("coarse", "fine"):
        assert names[net] == "network"
        assert names[f"{net}.encoder level 0"] == names[f"{net}.encoder bottleneck"] == "block"
        assert names[f"{net}.skip level 0"] == "skip"  # r2mfnet_v1: R2-Jump on every skip
        assert names[f"{net}.bottleneck attention"] == "attention"
    assert names["fine.mcskip level 1"] == "mcskip" and "coarse.mcskip level 0" not in names
    plain = create("unet", **TINY)
    assert not [n for n, k, _ in network_parts(plain) if k in ("skip", "mcskip", "attention")]


def test_part_rows_carry_the_flops_of_the_part_and_the_totals_add_up() -> None:
    torch.manual_seed(0)
    model = create("unet", **TINY).train()
    size = (32, 16)
    x, y = _inputs(2, size, torch.device("cpu"), channels_last=False)
    step = make_train_step(model, Switches(), 2, size, torch.device("cpu"))
    rows = profile_train_step(model, step, x, y, rounds=1, warmup=0)
    by_name = {r.name: r for r in rows}
    # the head is a 1x1 conv 4 -> 1: forward 2*4*HW*B FLOPs; backward to input and weight twice that
    head = 2 * 4 * 32 * 16 * 2
    assert abs(by_name["net.head"].gflops * 1e9 - 3 * head) < 1
    # the network row counts what a training step counts for the convolutions
    assert abs(by_name["net"].gflops - count_flops(step) / 1e9) / by_name["net"].gflops < 1e-6
    assert all(r.ms > 0 for r in rows)
    totals = summarise(rows)
    parts = sum(r.ms for r in rows if r.kind not in ("network", "step"))
    assert abs(totals["other"] - (by_name["step"].ms - parts)) < 1e-9
    assert totals["step"] == by_name["step"].ms


def test_profile_command_writes_json_and_markdown(tmp_path) -> None:
    out = tmp_path / "profile.json"
    result = run_script("benchmark.py", ["mode=profile", "threads=1", "rounds=1", "warmup=0",
                                         "profile_experiment=smoke", "profile_models=[unet,r2mfnet]",
                                         f"output_file={out}"])
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["stage_steps"]) == {"unet", "r2mfnet"}
    assert data["ratios"]["unet"]["single"] == 1.0
    assert set(data["stage_steps"]["r2mfnet"]) == {"single", "inference"}  # joint training: one stage
    table = out.with_suffix(".md").read_text()
    assert "fine.decoder level 0" in table and "| step |" in table
