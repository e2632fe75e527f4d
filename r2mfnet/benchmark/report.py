"""The benchmark's markdown report: the run's result dict (:mod:`~r2mfnet.benchmark.runner`) as
the tables docs/performance.md shows, one section per function.

The runner keeps every number at full precision (the JSON); rounding for the tables happens
here only, and a missing or NaN value is written ``-``.
"""
from __future__ import annotations

from typing import Any


def _f(v: Any, spec: str = ".2f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, spec)


def to_markdown(result: dict[str, Any]) -> str:
    """The run as markdown: the machine, the models, the primary model's switch combinations,
    the data pipeline (if measured), the targets, what was not measured, the wall time."""
    lines = _machine_lines(result) + _model_table(result) + _switch_table(result) + _data_table(result)
    lines += _target_table(result)
    if result.get("errors"):
        lines += ["", "Not measured:"] + [f"- {k}: {v}" for k, v in result["errors"].items()]
    lines.append("")
    lines.append(f"Benchmark wall time {result['seconds']:.0f} s.")
    return "\n".join(lines)


def _by_task(result: dict[str, Any]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Training and inference rows keyed by task name (``train <model> <switches>``,
    ``infer <model> <switches> b<batch>``)."""
    return ({r["task"]: r for r in result.get("train", [])},
            {r["task"]: r for r in result.get("inference", [])})


def _machine_lines(result: dict[str, Any]) -> list[str]:
    """Where and how it was measured: a reader compares runs only if the load and the thread
    count are written beside the numbers."""
    cfg, mach = result["config"], result["machine"]
    h, w = cfg["size"]
    return [
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['torch_threads']} torch threads, device "
        f"{mach['device']}, torch {mach['torch']}; load average {_f((mach.get('load_average_start') or [None])[0], '.1f')}"
        f" at start, {_f((mach.get('load_average_end') or [None])[0], '.1f')} at end.",
        f"Input 1x{h}x{w}, batch {cfg['batch']}, base_channels {cfg['base_channels']}, depth {cfg['depth']}; "
        f"{cfg['rounds']} interleaved rounds, medians. images/s = wall clock; images/CPU-s = per second of "
        "CPU time the process got (load-independent at a fixed thread count).",
    ]


def _model_table(result: dict[str, Any]) -> list[str]:
    """One row per model: its static cost and its plain fp32 speed and memory."""
    nb = result["config"]["batch"]
    train, infer = _by_task(result)
    lines = [
        "",
        "| model | params (M) | GFLOPs fwd / image | GFLOPs train / image | train images/s | train images/CPU-s |"
        f" infer ms/image b1 | infer ms/image b{nb} | train peak mem (MB) | state (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        t = train.get(f"train {name} fp32", {})
        lines.append(
            f"| {name} | {m['params_m']:.3f} | {m['gflops_forward_per_image']:.2f} | {m['gflops_train_per_image']:.2f} | "
            f"{_f(t.get('images_per_s'))} | {_f(t.get('images_per_cpu_s'))} | "
            f"{_f(infer.get(f'infer {name} fp32 b1', {}).get('ms_per_image'), '.1f')} | "
            f"{_f(infer.get(f'infer {name} fp32 b{nb}', {}).get('ms_per_image'), '.1f')} | "
            f"{_f(t.get('peak_mb'), '.0f')} | {m['state_mb']:.0f} |")
    return lines


def _switch_table(result: dict[str, Any]) -> list[str]:
    """The primary model per switch combination, with the measured peak and the three ways the
    fraction of it is taken explained above the table (they differ under load)."""
    nb, prim = result["config"]["batch"], result["config"]["primary"]
    on_cpu = result.get("fraction_basis") == "cpu_time"
    train, infer = _by_task(result)
    peak = result["peak_flops"]
    fp = peak["fp32"]
    lines = [
        "",
        f"Switch combinations, {prim} (joint stage: both networks, forward + backward + AdamW). fp32 matmul "
        f"peak probed before every training step: median {_f(fp['median'] / 1e9, '.1f')} GFLOP/s wall, best "
        f"{_f(fp['max'] / 1e9, '.1f')}, {_f(fp.get('per_cpu_second_median', float('nan')) / 1e9, '.1f')} GFLOP per CPU-second"
        + (f"; bf16 {_f(peak['bf16']['median'] / 1e9, '.1f')} GFLOP/s" if "bf16" in peak else "") + ".",
        "% of peak: *CPU* = achieved FLOP per CPU-second / matmul FLOP per CPU-second (load-independent); "
        "*paired* = wall FLOP/s / the wall peak probed just before; *vs best* = median wall FLOP/s / the best "
        "matmul rate of the run (the most conservative).",
        "",
        "| switches | train images/s | images/CPU-s | speed-up | GFLOP/s | GFLOP/CPU-s | % fp32 peak (CPU) |"
        " % (paired) | % (vs best) | % bf16 peak |"
        f" infer ms/image b1 | infer ms/image b{nb} | train peak mem (MB) | warm-up (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = train.get(f"train {prim} fp32", {}).get("images_per_cpu_s" if on_cpu else "images_per_s")
    for r in result.get("train", []):
        if r["model"] != prim:
            continue
        sw = r["switches"]
        fr = r.get("peak_fractions", {})
        bf = r.get("bf16_peak_fraction")
        speed = r.get("images_per_cpu_s" if on_cpu else "images_per_s")
        lines.append(
            f"| {sw} | {r['images_per_s']:.2f} | {_f(r.get('images_per_cpu_s'))} | {_f(speed / base if base else None)}x | "
            f"{r['gflops_per_s']:.1f} | {_f(r.get('gflops_per_cpu_s'), '.1f')} | "
            f"{_f(100 * fr['fp32_cpu_time'] if fr.get('fp32_cpu_time') else None, '.1f')} | "
            f"{_f(100 * fr['fp32_wall_paired'] if fr.get('fp32_wall_paired') else None, '.1f')} | "
            f"{_f(100 * fr['fp32_vs_best'] if fr.get('fp32_vs_best') else None, '.1f')} | "
            f"{_f(100 * bf if bf else None, '.0f')} | "
            f"{_f(infer.get(f'infer {prim} {sw} b1', {}).get('ms_per_image'), '.1f')} | "
            f"{_f(infer.get(f'infer {prim} {sw} b{nb}', {}).get('ms_per_image'), '.1f')} | "
            f"{_f(r['peak_mb'], '.0f')} | {r['warmup_s']:.1f} |")
    return lines


def _data_table(result: dict[str, Any]) -> list[str]:
    """Images per second of each data stage for one worker, against what the primary model's fp32
    training consumes (wall): how many workers keep it fed."""
    data = result.get("data")
    if not data:
        return []
    h, w = result["config"]["size"]
    prim = result["config"]["primary"]
    train, _ = _by_task(result)
    ips = data["images_per_s_per_worker"]
    tr = train.get(f"train {prim} fp32", {}).get("images_per_s")
    dh, dw = data["image_size"]
    lines = [
        "",
        f"Data pipeline, one worker (1 torch + 1 OpenCV thread), {dh}x{dw} px synthetic PNGs -> {h}x{w} input, "
        f"vs {prim} fp32 training consumption {_f(tr)} images/s (wall):",
        "",
        "| stage | images/s per worker | x training consumption |",
        "|---|---:|---:|",
    ]
    for k, v in ips.items():
        lines.append(f"| {k} | {v:.1f} | {_f(v / tr if tr else None, '.1f')} |")
    return lines


def _target_table(result: dict[str, Any]) -> list[str]:
    """Each target of issue 7 with the measured value and, beside it, the other bases (wall,
    FLOPs, paired, vs best), so a target met on one clock only is visible."""
    on_cpu = result.get("fraction_basis") == "cpu_time"
    ratios = result["ratios"]
    lines = ["", "| target (issue 7) | required | measured | met |", "|---|---:|---:|---|"]
    for key, t in result["targets"].items():
        extra = ""
        if key == "r2mfnet_vs_cascade" and "r2mfnet_vs_cascade_wall" in ratios:
            extra = (f" ({'CPU time' if on_cpu else 'wall'}; wall {_f(ratios['r2mfnet_vs_cascade_wall'])}, "
                     f"FLOPs {_f(ratios['r2mfnet_vs_cascade_flops'])})")
        if key == "best_fp32_peak_fraction" and ratios.get("best_fp32_peak_fraction_switches"):
            extra = (f" ({ratios['best_fp32_peak_fraction_switches']}; paired "
                     f"{_f(ratios.get('best_fp32_peak_fraction_wall_paired'))}, vs best "
                     f"{_f(ratios.get('best_fp32_peak_fraction_vs_best_matmul'))})")
        met = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['description']} | >= {t['target']} | {_f(t['measured'])}{extra} | {met} |")
    return lines
