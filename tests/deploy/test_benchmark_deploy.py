"""scripts/benchmark.py mode=deploy runs at toy size and produces every row the lead will measure.\n\nThe presets and option errors need no extra: tests/deploy/test_without_extras.py."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx", reason="the deploy extra is not installed (pip install -e '.[deploy]')")
pytest.importorskip("onnxruntime", reason="the deploy extra is not installed (pip install -e '.[deploy]')")

from r2mfnet.apps import benchmark as bench_app  # noqa: E402
from r2mfnet.benchmark.deploy_bench import (  # noqa: E402
    BACKENDS, DeployBenchConfig, DeployCase, deploy_markdown, run_deploy_benchmark)
from r2mfnet.config_dir import compose  # noqa: E402
from tests.deploy._helpers import save_tiny_checkpoint  # noqa: E402


def test_deploy_mode_rows_at_toy_size(tmp_path):
    tiny = DeployCase("tiny crop", {"name": "r2mfnet", "base_channels": 4, "depth": 2, "fine_crop": True,
                                    "coarse_size": [32, 16], "crop_size": [32, 16]}, (64, 32))
    cfg = DeployBenchConfig(cases=[tiny], batches=(1, 2), threads=(1,), rounds=2, warmup=1, dice_cases=1,
                            cache_dir=str(tmp_path / "cache"))
    result = run_deploy_benchmark(cfg, log=lambda m: None)
    (case,) = result["cases"]
    rows = {(r["backend"], r["batch"], r["threads"]): r for r in case["rows"]}
    assert set(rows) == {(b, n, 1) for b in BACKENDS for n in (1, 2)}
    for (backend, _, _), r in rows.items():
        assert r["ms_per_image"] > 0 and r["rounds"] == 2
        if backend == "torch":
            assert r["speedup_vs_torch"] == 1.0  # the reference of each round divided by itself
    agreement = case["agreement"]
    assert agreement["images"] == 3  # one synthetic patient, three views
    assert agreement["mask_dice_min"] > 0.99 and agreement["max_abs_logit_diff"] < 1e-3
    table = deploy_markdown(result)
    assert "| onnxruntime | 2 | 1 |" in table and "mask Dice mean" in table


def test_benchmark_command_deploy_mode_with_a_checkpoint(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "deploy.json"
    cfg = compose("benchmark", ["mode=deploy", "deploy_presets=[]", f"deploy_checkpoints=[{ckpt}]",
                                "deploy_batches=[1]", "deploy_threads=[1]", "rounds=1", "warmup=0",
                                "deploy_dice_cases=0", f"output_file={out}"])
    bench_app.run(cfg)
    doc = json.loads(out.read_text())
    assert doc["mode"] == "deploy" and len(doc["cases"][0]["rows"]) == len(BACKENDS)
    assert doc["cases"][0]["input_size"] == [64, 32]
    assert out.with_suffix(".md").read_text().startswith("PyTorch")
