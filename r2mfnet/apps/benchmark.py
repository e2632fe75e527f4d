"""``r2mfnet-benchmark`` / ``scripts/benchmark.py``: models, switch combinations, data pipeline.

Root config ``configs/benchmark.yaml``. :func:`r2mfnet.benchmark.report.run_benchmark` does the
work (``mode=deploy``: PyTorch eager against ONNX Runtime,
:func:`r2mfnet.benchmark.deploy_bench.run_deploy_benchmark`); the full result is written as JSON
(``out``) and the markdown tables beside it (``.md``),
both atomically, and printed.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def _size(value: Any) -> tuple[int, int]:
    try:
        if isinstance(value, str):
            h, w = (int(v) for v in value.lower().split("x"))
        else:
            h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be HxW, e.g. 256x128, got '{value}'") from None
    return h, w


def _names(value: Any) -> list[str]:
    """A list (``[a,b]``) or a quoted comma-separated string (``'a,b'``)."""
    items = value.split(",") if isinstance(value, str) else OmegaConf.to_container(value)
    return [str(t).strip() for t in items if str(t).strip()]  # type: ignore[union-attr]


def bench_config(cfg: DictConfig) -> Any:
    """The :class:`~r2mfnet.benchmark.report.BenchConfig` of a composed ``benchmark`` config."""
    from r2mfnet.benchmark.report import QUICK_SWITCHES, BenchConfig

    bench = BenchConfig(base_channels=int(cfg.base_channels), depth=int(cfg.depth), device=str(cfg.device),
                        threads=int(cfg.threads), warmup=int(cfg.warmup), data=bool(cfg.data_pipeline),
                        data_cache_dir=str(cfg.data_cache_dir), compile_cache_dir=cfg.compile_cache_dir,
                        primary=str(cfg.primary), force_slow_amp=bool(cfg.force_slow_amp))
    if cfg.quick:
        bench.models, bench.size, bench.batch = ["r2mfnet", "two_unet_cascade"], (128, 64), 4
        bench.switches = list(QUICK_SWITCHES)
        bench.rounds, bench.data_cases, bench.data_image_size, bench.data_items_per_round = 3, 3, (256, 128), 12
        bench.threads = int(cfg.threads) or 1  # one thread: on a shared machine two threads wait on each other
    if cfg.models is not None:
        bench.models = _names(cfg.models)
    if cfg.switches is not None:
        bench.switches = _names(cfg.switches)
    if cfg.size is not None:
        bench.size = _size(cfg.size)
    for key in ("batch", "rounds", "data_cases"):
        if cfg[key] is not None:
            setattr(bench, key, int(cfg[key]))
    if bench.primary not in bench.models:
        raise ConfigError(f"primary={bench.primary} must be one of models={bench.models}")
    return bench


def deploy_config(cfg: DictConfig) -> Any:
    """The :class:`~r2mfnet.benchmark.deploy_bench.DeployBenchConfig` of ``mode=deploy``."""
    from r2mfnet.benchmark.deploy_bench import PRESETS, DeployBenchConfig, case_from_checkpoint

    cases = []
    for name in _names(cfg.deploy_presets) if cfg.deploy_presets is not None else []:
        if name not in PRESETS:
            raise ConfigError(f"deploy_presets: unknown preset '{name}' (known: {', '.join(PRESETS)})")
        cases.append(PRESETS[name])
    for path in _names(cfg.deploy_checkpoints) if cfg.deploy_checkpoints is not None else []:
        cases.append(case_from_checkpoint(path))
    try:
        batches = tuple(int(b) for b in _names(cfg.deploy_batches))
        threads = tuple(int(t) for t in _names(cfg.deploy_threads))
    except ValueError:
        raise ConfigError("deploy_batches and deploy_threads must be lists of integers, e.g. [1,8]") from None
    return DeployBenchConfig(cases=cases, batches=batches, threads=threads,
                             rounds=int(cfg.rounds) if cfg.rounds is not None else 5,
                             warmup=int(cfg.warmup), dice_cases=int(cfg.deploy_dice_cases),
                             cache_dir=str(cfg.data_cache_dir), opset=int(cfg.deploy_opset))


def profile(cfg: DictConfig, log) -> dict:
    """``mode=profile``: each of ``profile_models`` built from ``configs/model/<name>.yaml`` as
    ``experiment=<profile_experiment>`` trains it (input size, batch, base width, depth)."""
    import torch

    from r2mfnet.benchmark.step_profile import profile_models
    from r2mfnet.training.run_config import build_model, validate
    from r2mfnet.config_dir import compose

    names = _names(cfg.profile_models)
    if not names:
        raise ConfigError("profile_models must name at least one model, e.g. [unet,r2mfnet]")
    if int(cfg.threads) > 0:
        torch.set_num_threads(int(cfg.threads))
    models, size, batch = {}, None, None
    for name in names:
        run = validate(compose("config", [f"experiment={cfg.profile_experiment}", f"model={name}"]))
        torch.manual_seed(0)
        models[name] = build_model(run.model)
        here = (int(run.data.input_height), int(run.data.input_width))
        size = size or here
        batch = batch or int(run.data.batch_size)
        if here != size:
            raise ConfigError(f"profile_models: {name} trains at {here[0]}x{here[1]}, {names[0]} at "
                              f"{size[0]}x{size[1]}: profile models of one input size together")
    if cfg.size is not None:
        size = _size(cfg.size)
    if cfg.batch is not None:
        batch = int(cfg.batch)
    return profile_models(models, batch, size, rounds=int(cfg.rounds) if cfg.rounds is not None else 5,
                          warmup=int(cfg.warmup), log=log)


def run(cfg: DictConfig) -> dict:
    """Benchmark, write ``out`` (JSON) and its ``.md`` tables, print the tables."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text

    mode = str(cfg.get("mode", "models"))
    if mode not in ("models", "deploy", "profile"):
        raise ConfigError(f"mode must be models, deploy or profile, got '{mode}'")
    out = Path(str(cfg.out))
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if mode == "deploy":
        from r2mfnet.benchmark.deploy_bench import deploy_markdown, run_deploy_benchmark

        result = run_deploy_benchmark(deploy_config(cfg), log=log)
        table = deploy_markdown(result)
    elif mode == "profile":
        from r2mfnet.benchmark.step_profile import profile_markdown

        result = profile(cfg, log)
        table = profile_markdown(result)
    else:
        from r2mfnet.benchmark.report import run_benchmark, to_markdown

        result = run_benchmark(bench_config(cfg), log=log)
        table = to_markdown(result)
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    print(f"\nJSON: {out}", file=sys.stderr)
    return result


main = hydra_entry("benchmark", run)
