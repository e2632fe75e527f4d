"""``r2mfnet-benchmark`` / ``scripts/benchmark.py``: models, switch combinations, data pipeline.

Root config ``configs/benchmark.yaml``. :func:`r2mfnet.benchmark.report.run_benchmark` does the
work; the full result is written as JSON (``out``) and the markdown tables beside it (``.md``),
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


def run(cfg: DictConfig) -> dict:
    """Benchmark, write ``out`` (JSON) and its ``.md`` tables, print the tables."""
    from r2mfnet.atomic import atomic_write_json, atomic_write_text
    from r2mfnet.benchmark.report import run_benchmark, to_markdown

    bench = bench_config(cfg)
    out = Path(str(cfg.out))
    result = run_benchmark(bench, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    table = to_markdown(result)
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    print(f"\nJSON: {out}", file=sys.stderr)
    return result


main = hydra_entry("benchmark", run)
