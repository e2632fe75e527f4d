"""The benchmark runner: build every task, time them interleaved, summarise the run as a dict
(written as JSON; :mod:`~r2mfnet.benchmark.report` turns it into markdown tables).

Everything that is compared is measured in the same rounds (see :mod:`~r2mfnet.benchmark.timing`):
training steps of each model and switch combination, inference at batch 1 and batch N, a fp32
(and bf16) matrix product for the peak, and the data pipeline per worker. Ratios are taken per
round and summarised by their median, so that load from other processes cancels out as far as
possible; absolute numbers are only as stable as the machine.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from r2mfnet.benchmark import peak as F
from r2mfnet.benchmark.model_bench import (
    CASCADE, Switches, build_model, make_inference, make_train_step, parameter_count, state_megabytes,
)
from r2mfnet.benchmark.timing import interleaved, median, peak_memory_during
from r2mfnet.models.flops import forward_flops, train_step_flops
from r2mfnet.training.losses import DiceCELoss

ALL_SWITCHES = ["fp32", "cl", "bf16", "cl+bf16", "compile", "cl+compile", "bf16+compile", "cl+bf16+compile"]
QUICK_SWITCHES = ["fp32", "cl", "bf16", "cl+bf16"]
SLOW_AMP_FRACTION = 0.25
"""An autocast dtype whose matmul runs below this fraction of fp32's is emulated on this machine
(e.g. bf16 on a CPU without AVX512-BF16/AMX): its switch combinations are skipped unless forced."""

TARGETS = {
    "r2mfnet_vs_cascade": ("R2MF-Net (both stages) training throughput / two plain U-Nets in cascade", 0.5),
    "data_vs_training": ("augmented images/s per worker / images/s training consumes", 3.0),
    "best_fp32_peak_fraction": ("training FLOP/s / fp32 matmul FLOP/s, best switch combination", 0.4),
}


@dataclass
class BenchConfig:
    models: list[str] = field(default_factory=lambda: ["r2mfnet", CASCADE, "unet"])
    primary: str = "r2mfnet"  # the model every switch combination is measured on
    size: tuple[int, int] = (256, 128)
    batch: int = 8
    base_channels: int = 16
    depth: int = 4
    switches: list[str] = field(default_factory=lambda: list(ALL_SWITCHES))
    device: str = "cpu"
    rounds: int = 5
    warmup: int = 1
    threads: int = 0  # torch intra-op threads; 0 = leave as is
    matmul_sizes: tuple[int, ...] = (256, 512, 1024)  # peak = the best of these square products
    force_slow_amp: bool = False  # measure emulated bf16/fp16 too (very slow)
    data: bool = True
    data_cases: int = 8
    data_image_size: tuple[int, int] = (512, 256)  # original resolution of the synthetic images
    data_items_per_round: int = 24
    data_cache_dir: str = ".cache/r2mfnet"
    compile_cache_dir: str | None = None


def machine_info(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    info = {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu": cpu, "cores": cores, "torch_threads": torch.get_num_threads(), "device": str(device),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _safe(errors: dict[str, str], name: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a switch the machine cannot run is reported, not fatal
        errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return None


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark with ``cfg.threads`` torch threads, restoring the caller's count after
    (callers in the same process, tests included, must not inherit the benchmark's setting)."""
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run_benchmark(cfg, log)
    finally:
        torch.set_num_threads(threads_before)


def _run_benchmark(cfg: BenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """The run, step by step; each step's result goes into the one ``result`` dict (the JSON).

    The order of the steps is the order of the measurements: the probes and warm-ups before the
    interleaved rounds, the summaries after them.
    """
    started = time.perf_counter()
    device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    size, batch = tuple(cfg.size), cfg.batch
    kw = dict(base_channels=cfg.base_channels, depth=cfg.depth)
    result: dict[str, Any] = {"config": asdict(cfg), "machine": machine_info(device), "errors": {}}
    errors: dict[str, str] = result["errors"]

    switches = _usable_switches(cfg, device, result, errors)
    models = _model_costs(cfg, kw, size, batch, log)
    result["models"] = models
    tasks, meta = _build_tasks(cfg, switches, kw, size, batch, device, errors, log)

    # CPU seconds are load-independent with one thread; with several, idle OpenMP threads spin and
    # count as CPU time, and on CUDA only wall time means anything: then wall time, paired
    cpu_clock = device.type == "cpu" and torch.get_num_threads() == 1
    peak_dtypes = ["fp32"] + (["bf16"] if any(sw.amp == "bf16" for sw in switches) else [])
    peaks = _PeakProbes(cfg, device, peak_dtypes)
    ordered = _execution_order(cfg, tasks, meta, peaks)

    data_rates: dict[str, list[float]] = {}
    if cfg.data:
        data_tasks = _safe(errors, "data", lambda: _data_tasks(cfg, size, data_rates, log))
        if data_tasks:
            for name, fn in data_tasks.items():
                ordered[name], meta[name] = fn, {"kind": "data"}

    # ---- interleaved rounds
    log(f"timing {len(ordered)} tasks x {cfg.rounds} rounds ...")
    cpu: dict[str, list[float]] = {}
    samples = interleaved(ordered, cfg.rounds, device, cpu_samples=cpu,
                          on_round=lambda r: log(f"round {r + 1}/{cfg.rounds} done"))
    result["samples_s"] = {k: v for k, v in samples.items() if not k.startswith("peak before ")}
    result["samples_cpu_s"] = {k: v for k, v in cpu.items() if not k.startswith("peak before ")}
    result["peak_flops"] = peaks.summary()
    result["fraction_basis"] = "cpu_time" if cpu_clock else "wall_paired"

    train_rows, infer_rows = _summary_rows(meta, samples, cpu, models, peaks, cpu_clock)
    result["train"] = train_rows
    result["inference"] = infer_rows
    ratios = _ratios(cfg, samples, cpu, models, train_rows, cpu_clock)
    if data_rates and f"train {cfg.primary} fp32" in samples:
        result["data"] = _data_summary(cfg, size, samples, data_rates, ratios)
    result["ratios"] = ratios
    result["targets"] = {
        key: {"description": desc, "target": target, "measured": ratios.get(key),
              "met": None if ratios.get(key) is None else bool(ratios[key] >= target)}
        for key, (desc, target) in TARGETS.items()
    }
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["seconds"] = time.perf_counter() - started
    return result


def _usable_switches(cfg: BenchConfig, device: torch.device, result: dict[str, Any],
                     errors: dict[str, str]) -> list[Switches]:
    """The switch combinations this machine can run (plain fp32 always first among them).

    A dtype the device refuses is reported; one it only emulates (a matmul below
    :data:`SLOW_AMP_FRACTION` of fp32's) is reported and skipped unless ``force_slow_amp``: an
    emulated bf16 step takes minutes and says nothing about the model.
    """
    switches = [Switches.parse(s) for s in cfg.switches]
    if Switches() not in switches:
        switches.insert(0, Switches())
    usable = []
    for sw in switches:
        if sw.amp and not F.dtype_supported(sw.amp_dtype, device):
            errors[f"switch {sw.name}"] = f"{sw.amp} is not supported on {device.type}"
        else:
            usable.append(sw)
    switches = usable
    fast: dict[str, bool] = {}
    for amp in sorted({sw.amp for sw in switches if sw.amp}):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        ref = max(F.matmul_flops_per_s(torch.float32, 256, 3, device), 1.0)
        got = F.matmul_flops_per_s(dtype, 256, 3, device)
        fast[amp] = got / ref >= SLOW_AMP_FRACTION
        result.setdefault("amp_probe", {})[amp] = {"matmul_gflops": got / 1e9, "fp32_matmul_gflops": ref / 1e9}
        if not fast[amp] and not cfg.force_slow_amp:
            errors[f"switches with {amp}"] = (
                f"skipped: a {amp} matmul runs at {got / 1e9:.1f} GFLOP/s vs {ref / 1e9:.1f} for fp32 here "
                f"(no native {amp} arithmetic); force_slow_amp=true measures them anyway")
    return [sw for sw in switches if not sw.amp or fast[sw.amp] or cfg.force_slow_amp]


def _model_costs(cfg: BenchConfig, kw: dict[str, int], size: tuple[int, int], batch: int,
                 log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Static cost of every model (parameters, state size, counted FLOPs): the numbers that do not
    depend on the machine, against which the timed ones are read."""
    models: dict[str, dict[str, Any]] = {}
    for name in cfg.models:
        m = build_model(name, **kw)
        models[name] = {
            "params_m": parameter_count(m) / 1e6,
            "state_mb": state_megabytes(m),
            "gflops_forward_per_image": forward_flops(m, (1, 1, *size)) / 1e9,
            "gflops_train_per_image": train_step_flops(m, (batch, 1, *size), DiceCELoss()) / batch / 1e9,
        }
        log(f"{name}: {models[name]['params_m']:.3f} M parameters, "
            f"{models[name]['gflops_forward_per_image']:.2f} GFLOPs forward / image, "
            f"{models[name]['gflops_train_per_image']:.2f} GFLOPs per image and training step")
    return models


def _build_tasks(cfg: BenchConfig, switches: list[Switches], kw: dict[str, int], size: tuple[int, int],
                 batch: int, device: torch.device, errors: dict[str, str],
                 log: Callable[[str], None]) -> tuple[dict[str, Callable[[], Any]], dict[str, dict[str, Any]]]:
    """Build, warm up and memory-probe every training and inference task: ``(tasks, meta)``.

    Every switch combination runs on the primary model, plain fp32 on the others. A task that
    fails to build or to run is reported in ``errors`` and left out, so one switch the machine
    cannot run does not cost the rest of the benchmark.
    """
    tasks: dict[str, Callable[[], Any]] = {}
    meta: dict[str, dict[str, Any]] = {}

    def add(name: str, build: Callable[[], Callable[[], Any]], **info: Any) -> None:
        fn = _safe(errors, name, build)
        if fn is None:
            return
        t0 = time.perf_counter()
        if _safe(errors, name, lambda: [fn() for _ in range(max(1, cfg.warmup))]) is None:
            return
        info["warmup_s"] = time.perf_counter() - t0
        mem = _safe(errors, name, lambda: peak_memory_during(fn, device))
        if mem is None:
            return
        info.update(mem)
        tasks[name], meta[name] = fn, info
        log(f"ready: {name} (warm-up {info['warmup_s']:.1f} s)")

    for name in cfg.models:
        model_switches = switches if name == cfg.primary else [Switches()]
        for sw in model_switches:
            add(f"train {name} {sw.name}",
                lambda name=name, sw=sw: make_train_step(build_model(name, **kw), sw, batch, size, device,
                                                         cfg.compile_cache_dir),
                kind="train", model=name, switches=sw.name, batch=batch)
            for b in (1, batch):
                add(f"infer {name} {sw.name} b{b}",
                    lambda name=name, sw=sw, b=b: make_inference(build_model(name, **kw), sw, b, size, device,
                                                                 cfg.compile_cache_dir),
                    kind="infer", model=name, switches=sw.name, batch=b)
    return tasks, meta


class _PeakProbes:
    """The matmul peak probed right before each training step, per dtype.

    The wall-clock FLOP/s fraction divides each step by the peak measured seconds earlier, so
    load from other processes hits both alike; the CPU-time rates are kept beside the wall ones.
    """

    def __init__(self, cfg: BenchConfig, device: torch.device, dtypes: list[str]) -> None:
        self.cfg, self.device, self.dtypes = cfg, device, dtypes
        self.wall: dict[str, dict[str, list[float]]] = {}  # wall FLOP/s of each probe
        self.per_cpu: dict[str, dict[str, list[float]]] = {}  # FLOP per CPU second of each probe

    def before(self, train_name: str) -> Callable[[], None]:
        """The probe task to run just before ``train_name`` in every round."""
        self.wall[train_name] = {d: [] for d in self.dtypes}
        self.per_cpu[train_name] = {d: [] for d in self.dtypes}

        def run() -> None:
            for dtype_name in self.dtypes:
                dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
                sizes = self.cfg.matmul_sizes if dtype_name == "fp32" or self.device.type == "cuda" else (256,)
                rates = [F.matmul_rates(dtype, n, repeats=3, device=self.device) for n in sizes]
                self.wall[train_name][dtype_name].append(max(r[0] for r in rates))
                self.per_cpu[train_name][dtype_name].append(max(r[1] for r in rates))

        return run

    def summary(self) -> dict[str, dict[str, Any]]:
        """Median, best and every sample of the wall and per-CPU-second peaks, per dtype."""
        out = {}
        for d in self.dtypes:
            wall = [x for at in self.wall.values() for x in at[d]]
            per_cpu = [x for at in self.per_cpu.values() for x in at[d]]
            out[d] = {"median": median(wall), "max": max(wall) if wall else float("nan"),
                      "per_cpu_second_median": median(per_cpu), "samples": wall,
                      "per_cpu_second_samples": per_cpu}
        return out


def _execution_order(cfg: BenchConfig, tasks: dict[str, Callable[[], Any]], meta: dict[str, dict[str, Any]],
                     peaks: _PeakProbes) -> dict[str, Callable[[], Any]]:
    """The tasks in round order: compared tasks next to each other (training first, the primary
    model's fp32 step first of all), a matmul peak probe before every training step."""
    def rank(name: str) -> tuple[int, int]:
        info = meta[name]
        first = info.get("model") == cfg.primary and info.get("switches") == "fp32"
        return ({"train": 0, "infer": 1}.get(info["kind"], 2), 0 if first else 1 if info.get("switches") == "fp32" else 2)

    ordered: dict[str, Callable[[], Any]] = {}
    for name in sorted(tasks, key=rank):  # stable: building order within a rank
        if meta[name]["kind"] == "train":
            ordered[f"peak before {name}"] = peaks.before(name)
        ordered[name] = tasks[name]
    return ordered


def _summary_rows(meta: dict[str, dict[str, Any]], samples: dict[str, list[float]], cpu: dict[str, list[float]],
                  models: dict[str, dict[str, Any]], peaks: _PeakProbes,
                  cpu_clock: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per training task (throughput, FLOP/s and the fractions of peak, each paired with
    its own probes) and one per inference task (ms per image): medians over the rounds."""
    train_rows, infer_rows = [], []
    for name, info in meta.items():
        t, c = samples.get(name, []), cpu.get(name, [])
        if info["kind"] == "train":
            flops_step = models[info["model"]]["gflops_train_per_image"] * 1e9 * info["batch"]
            achieved = [flops_step / s for s in t]
            achieved_cpu = [flops_step / max(s, 1e-9) for s in c]
            frac: dict[str, float | None] = {}
            for d in ("fp32", "bf16"):
                wall_peaks = peaks.wall[name].get(d, [])
                cpu_peaks = peaks.per_cpu[name].get(d, [])
                frac[f"{d}_wall_paired"] = median([a / p for a, p in zip(achieved, wall_peaks)]) if wall_peaks else None
                frac[f"{d}_cpu_time"] = median([a / p for a, p in zip(achieved_cpu, cpu_peaks)]) if cpu_peaks else None
                frac[f"{d}_vs_best"] = (median(achieved) / max(wall_peaks)) if wall_peaks else None
            basis = "cpu_time" if cpu_clock else "wall_paired"
            row = {
                "task": name, "model": info["model"], "switches": info["switches"], "batch": info["batch"],
                "images_per_s": info["batch"] / median(t), "step_s": median(t), "step_cpu_s": median(c),
                "images_per_cpu_s": info["batch"] / median(c) if c else None,
                "gflops_per_s": median(achieved) / 1e9,
                "gflops_per_cpu_s": median(achieved_cpu) / 1e9 if achieved_cpu else None,
                "fp32_peak_fraction": frac[f"fp32_{basis}"], "bf16_peak_fraction": frac[f"bf16_{basis}"],
                "peak_fractions": frac,
                "peak_mb": info["peak_mb"], "memory_kind": info["memory_kind"], "warmup_s": info["warmup_s"],
            }
            train_rows.append(row)
        elif info["kind"] == "infer":
            infer_rows.append({"task": name, "model": info["model"], "switches": info["switches"],
                               "batch": info["batch"], "ms_per_image": 1e3 * median(t) / info["batch"],
                               "cpu_ms_per_image": 1e3 * median(c) / info["batch"] if c else None,
                               "peak_mb": info["peak_mb"], "memory_kind": info["memory_kind"]})
    return train_rows, infer_rows


def _ratios(cfg: BenchConfig, samples: dict[str, list[float]], cpu: dict[str, list[float]],
            models: dict[str, dict[str, Any]], train_rows: list[dict[str, Any]],
            cpu_clock: bool) -> dict[str, Any]:
    """The ratios the targets are judged on: R2MF-Net against the cascade (per round, then the
    median), the best fraction of peak and the fastest switch combination of the primary model."""
    ratios: dict[str, Any] = {}
    key_p, key_c = f"train {cfg.primary} fp32", f"train {CASCADE} fp32"
    if key_p in samples and key_c in samples:
        ratios["r2mfnet_vs_cascade_wall_rounds"] = [c / p for p, c in zip(samples[key_p], samples[key_c])]
        ratios["r2mfnet_vs_cascade_cpu_rounds"] = [c / p for p, c in zip(cpu[key_p], cpu[key_c])]
        ratios["r2mfnet_vs_cascade_wall"] = median(ratios["r2mfnet_vs_cascade_wall_rounds"])
        ratios["r2mfnet_vs_cascade_cpu"] = median(ratios["r2mfnet_vs_cascade_cpu_rounds"])
        ratios["r2mfnet_vs_cascade"] = ratios["r2mfnet_vs_cascade_cpu" if cpu_clock else "r2mfnet_vs_cascade_wall"]
        ratios["r2mfnet_vs_cascade_flops"] = (models[CASCADE]["gflops_train_per_image"]
                                              / models[cfg.primary]["gflops_train_per_image"])
    primary_rows = [r for r in train_rows if r["model"] == cfg.primary]
    if primary_rows:
        best = max(primary_rows, key=lambda r: r["fp32_peak_fraction"])
        fastest = max(primary_rows, key=lambda r: r["images_per_cpu_s"] if cpu_clock else r["images_per_s"])
        ratios["best_fp32_peak_fraction"] = best["fp32_peak_fraction"]
        ratios["best_fp32_peak_fraction_switches"] = best["switches"]
        ratios["best_fp32_peak_fraction_wall_paired"] = max(r["peak_fractions"]["fp32_wall_paired"] for r in primary_rows)
        ratios["best_fp32_peak_fraction_vs_best_matmul"] = max(r["peak_fractions"]["fp32_vs_best"] for r in primary_rows)
        ratios["fastest_training_switches"] = fastest["switches"]
    return ratios


def _data_summary(cfg: BenchConfig, size: tuple[int, int], samples: dict[str, list[float]],
                  data_rates: dict[str, list[float]], ratios: dict[str, Any]) -> dict[str, Any]:
    """Images per second per worker of each data stage, and (into ``ratios``) the augmented
    pipeline against what the primary model's training consumes, per round."""
    batch = cfg.batch
    per_round_train = [batch / s for s in samples[f"train {cfg.primary} fp32"]]
    data_summary = {k: median(v) for k, v in data_rates.items()}
    data = {"images_per_s_per_worker": data_summary,
            "image_size": list(cfg.data_image_size), "input_size": list(size)}
    aug = data_rates.get("cached+augment")
    if aug:
        ratios["data_vs_training"] = median([a / t for a, t in zip(aug, per_round_train)])
        fastest = ratios.get("fastest_training_switches")
        if fastest is not None:
            fastest_key = f"train {cfg.primary} {fastest}"
            ratios["data_vs_fastest_training"] = median(
                [a / (batch / s) for a, s in zip(aug, samples[fastest_key])])
    return data


def _data_tasks(cfg: BenchConfig, size: tuple[int, int], rates: dict[str, list[float]],
                log: Callable[[str], None]) -> dict[str, Callable[[], None]]:
    from r2mfnet.benchmark.data_bench import make_data_tasks, synthetic_records

    h, w = cfg.data_image_size
    records = synthetic_records(cfg.data_cache_dir, cfg.data_cases, h, w)
    log(f"data: {len(records)} synthetic views of {h}x{w} px -> input {size[0]}x{size[1]}")
    return make_data_tasks(records, size, cfg.data_items_per_round, rates)
