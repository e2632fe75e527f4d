"""Benchmark models, switch combinations and the data pipeline: ``python scripts/benchmark.py [--quick]``.

Thin on purpose: :func:`r2mfnet.benchmark.report.run_benchmark` does the work. Writes the full
result as JSON (``--out``) and prints markdown tables (also written next to the JSON as ``.md``).

  --quick                 < 1 min on a 2-core CPU: r2mfnet and the 2x U-Net cascade at 128x64,
                          batch 4, 1 thread, switches fp32/cl/bf16/cl+bf16 (bf16 skipped where the
                          CPU emulates it), 3 rounds, 3 data cases
  --models a,b            registry names and/or two_unet_cascade (default r2mfnet,two_unet_cascade,unet)
  --size HxW --batch N --base-channels C --depth D
  --switches s1,s2        '+'-joined fp32|cl|bf16|fp16|compile (default: all 8 combinations of
                          cl, bf16, compile)
  --device cpu|cuda|auto --threads N --rounds N --no-data --compile-cache-dir DIR --force-slow-amp
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from r2mfnet.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from r2mfnet.benchmark.report import QUICK_SWITCHES, BenchConfig, run_benchmark, to_markdown  # noqa: E402
from r2mfnet.cli import run_guarded  # noqa: E402
from r2mfnet.errors import ConfigError  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 256x128, got '{text}'") from None
    return h, w


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse(argv: list[str] | None = None) -> tuple[BenchConfig, Path]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", type=_list)
    p.add_argument("--primary", default="r2mfnet")
    p.add_argument("--size", type=_size)
    p.add_argument("--batch", type=int)
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--switches", type=_list)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--rounds", type=int)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--no-data", action="store_true")
    p.add_argument("--data-cases", type=int)
    p.add_argument("--data-cache-dir", default=os.environ.get("R2MFNET_CACHE_DIR", ".cache/r2mfnet"))
    p.add_argument("--compile-cache-dir", default=None)
    p.add_argument("--force-slow-amp", action="store_true", help="measure bf16/fp16 even where emulated")
    p.add_argument("--out", type=Path, default=Path("outputs/benchmark/benchmark.json"))
    a = p.parse_args(argv)
    cfg = BenchConfig(base_channels=a.base_channels, depth=a.depth, device=a.device, threads=a.threads,
                      warmup=a.warmup, data=not a.no_data, data_cache_dir=a.data_cache_dir,
                      compile_cache_dir=a.compile_cache_dir, primary=a.primary, force_slow_amp=a.force_slow_amp)
    if a.quick:
        cfg.models, cfg.size, cfg.batch, cfg.switches = ["r2mfnet", "two_unet_cascade"], (128, 64), 4, list(QUICK_SWITCHES)
        cfg.rounds, cfg.data_cases, cfg.data_image_size, cfg.data_items_per_round = 3, 3, (256, 128), 12
        cfg.threads = a.threads or 1  # one thread: on a shared machine two threads wait on each other
    for key in ("models", "size", "batch", "switches", "rounds", "data_cases"):
        if getattr(a, key) is not None:
            setattr(cfg, key, getattr(a, key))
    if cfg.primary not in cfg.models:
        raise ConfigError(f"--primary {cfg.primary} must be one of --models {cfg.models}")
    return cfg, a.out


def main(argv: list[str] | None = None) -> dict:
    cfg, out = parse(argv)
    result = run_benchmark(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    table = to_markdown(result)
    atomic_write_json(out, result)
    atomic_write_text(out.with_suffix(".md"), table + "\n")
    print(table)
    print(f"\nJSON: {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    run_guarded(main)
