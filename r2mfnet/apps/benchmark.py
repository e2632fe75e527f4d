"""``r2mfnet-benchmark`` / ``scripts/benchmark.py``: models, switch combinations, data pipeline.

Root config ``configs/benchmark.yaml``. :func:`r2mfnet.benchmark.runner.run_benchmark` does the
work (``mode=deploy``: PyTorch eager against ONNX Runtime,
:func:`r2mfnet.benchmark.deploy_bench.run_deploy_benchmark`); the full result is written as JSON
(``output_file``) and the markdown tables beside it (``.md``), both atomically, and printed.
The keys and their types are :class:`BenchmarkConfig`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, OutputFileKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError
from r2mfnet.typed_config import image_size_field


@dataclass
class BenchmarkConfig(OutputFileKeys, CommandConfig):
    """``configs/benchmark.yaml``'s keys and types (the values are the YAML's; a null means the
    mode's own default: ``quick=true``'s preset, else the runner's)."""

    RENAMED = {"out": "output_file", "size": "image_size"}
    mode: str = MISSING
    quick: bool = MISSING
    models: Any = MISSING  # a list [a,b] or a quoted string 'a,b' (as switches, deploy_*, profile_models)
    primary: str = MISSING
    image_size: Optional[List[int]] = image_size_field()
    batch: Optional[int] = MISSING
    base_channels: int = MISSING
    depth: int = MISSING
    switches: Any = MISSING
    device: str = MISSING
    threads: int = MISSING
    rounds: Optional[int] = MISSING
    warmup: int = MISSING
    data_pipeline: bool = MISSING
    data_cases: Optional[int] = MISSING
    data_cache_dir: str = MISSING
    compile_cache_dir: Optional[str] = MISSING
    force_slow_amp: bool = MISSING
    deploy_presets: Any = MISSING
    deploy_checkpoints: Any = MISSING
    deploy_batches: Any = MISSING
    deploy_threads: Any = MISSING
    deploy_dice_cases: int = MISSING
    deploy_opset: int = MISSING
    profile_models: Any = MISSING
    profile_experiment: str = MISSING


def _names(value: Any) -> list[str]:
    """A list (``[a,b]``) or a quoted comma-separated string (``'a,b'``)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(t).strip() for t in items if str(t).strip()]


def _typed(cfg: DictConfig | BenchmarkConfig) -> BenchmarkConfig:
    return cfg if isinstance(cfg, BenchmarkConfig) else command_config(BenchmarkConfig, cfg)


def bench_config(cfg: DictConfig | BenchmarkConfig) -> Any:
    """The :class:`~r2mfnet.benchmark.runner.BenchConfig` of a composed ``benchmark`` config."""
    from r2mfnet.benchmark.runner import QUICK_SWITCHES, BenchConfig

    cfg = _typed(cfg)
    bench = BenchConfig(base_channels=cfg.base_channels, depth=cfg.depth, device=cfg.device,
                        threads=cfg.threads, warmup=cfg.warmup, data=cfg.data_pipeline,
                        data_cache_dir=cfg.data_cache_dir, compile_cache_dir=cfg.compile_cache_dir,
                        primary=cfg.primary, force_slow_amp=cfg.force_slow_amp)
    if cfg.quick:
        bench.models, bench.size, bench.batch = ["r2mfnet", "two_unet_cascade"], (128, 64), 4
        bench.switches = list(QUICK_SWITCHES)
        bench.rounds, bench.data_cases, bench.data_image_size, bench.data_items_per_round = 3, 3, (256, 128), 12
        bench.threads = cfg.threads or 1  # one thread: on a shared machine two threads wait on each other
    if cfg.models is not None:
        bench.models = _names(cfg.models)
    if cfg.switches is not None:
        bench.switches = _names(cfg.switches)
    if cfg.image_size is not None:
        bench.size = cfg.image_size
    for key in ("batch", "rounds", "data_cases"):
        if getattr(cfg, key) is not None:
            setattr(bench, key, getattr(cfg, key))
    if bench.primary not in bench.models:
        raise ConfigError(f"primary={bench.primary} must be one of models={bench.models}")
    return bench


def deploy_config(cfg: DictConfig | BenchmarkConfig) -> Any:
    """The :class:`~r2mfnet.benchmark.deploy_bench.DeployBenchConfig` of ``mode=deploy``."""
    from r2mfnet.benchmark.deploy_bench import PRESETS, DeployBenchConfig, case_from_checkpoint

    cfg = _typed(cfg)
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
    rounds = {} if cfg.rounds is None else {"rounds": cfg.rounds}  # null: DeployBenchConfig's default
    return DeployBenchConfig(cases=cases, batches=batches, threads=threads, warmup=cfg.warmup,
                             dice_cases=cfg.deploy_dice_cases, cache_dir=cfg.data_cache_dir,
                             opset=cfg.deploy_opset, **rounds)


def profile(cfg: DictConfig | BenchmarkConfig, log) -> dict:
    """``mode=profile``: each of ``profile_models`` built from ``configs/model/<name>.yaml`` as
    ``experiment=<profile_experiment>`` trains it (input size, batch, base width, depth)."""
    import torch

    from r2mfnet.benchmark.step_profile import profile_models
    from r2mfnet.training.run_config import build_model, validate
    from r2mfnet.config_dir import compose

    cfg = _typed(cfg)
    names = _names(cfg.profile_models)
    if not names:
        raise ConfigError("profile_models must name at least one model, e.g. [unet,r2mfnet]")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
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
    if cfg.image_size is not None:
        size = cfg.image_size
    if cfg.batch is not None:
        batch = cfg.batch
    rounds = {} if cfg.rounds is None else {"rounds": cfg.rounds}  # null: profile_models' default
    return profile_models(models, batch, size, warmup=cfg.warmup, log=log, **rounds)


def run(cfg: DictConfig) -> dict:
    """Benchmark, write ``output_file`` (JSON) and its ``.md`` tables, print the tables."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text

    c = command_config(BenchmarkConfig, cfg)
    mode = c.mode
    if mode not in ("models", "deploy", "profile"):
        raise ConfigError(f"mode must be models, deploy or profile, got '{mode}'")
    if not c.output_file:
        raise ConfigError("output_file= is required (see --help)")
    out = Path(c.output_file)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if mode == "deploy":
        from r2mfnet.benchmark.deploy_bench import deploy_markdown, run_deploy_benchmark

        result = run_deploy_benchmark(deploy_config(c), log=log)
        table = deploy_markdown(result)
    elif mode == "profile":
        from r2mfnet.benchmark.step_profile import profile_markdown

        result = profile(c, log)
        table = profile_markdown(result)
    else:
        from r2mfnet.benchmark.report import to_markdown
        from r2mfnet.benchmark.runner import run_benchmark

        result = run_benchmark(bench_config(c), log=log)
        table = to_markdown(result)
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    print(f"\nJSON: {out}", file=sys.stderr)
    return result


main = hydra_entry("benchmark", run, renamed=BenchmarkConfig.RENAMED)
