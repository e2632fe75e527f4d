"""Timing under load: interleaved rounds and medians; peak-memory probes.

The machine this project is developed on has 2 cores shared with other jobs, so wall-clock times
drift by 2x within minutes. :func:`interleaved` therefore runs every task once per round, round
after round, and keeps every sample: ratios between tasks are computed *per round* (both
measured within seconds of each other) and then summarised by their median. It also records the
process CPU time of every call: with a fixed number of threads, CPU seconds measure what the work
cost independently of how much of the machine other jobs took (only cache and memory-bandwidth
contention remain), so cost ratios and FLOP/s fractions are computed from CPU time on CPU.

Memory: on CUDA :func:`torch.cuda.max_memory_allocated` during one call. On CPU there is no
allocator statistic, so :class:`RSSPeak` samples the process's resident set size
(``/proc/self/statm``) every millisecond in a thread during one call, after returning freed heap
to the system (``malloc_trim``); the result is the *peak RSS growth during the call*: activations,
gradients, temporaries and workspace, not the parameters and optimiser state that already existed
(reported separately). It is an estimate (sampling can miss a very short peak; the allocator
may keep freed blocks), good to within about 10 %.
"""
from __future__ import annotations

import ctypes
import gc
import os
import statistics
import threading
import time
from typing import Callable

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_bytes() -> int:
    """Current resident set size of this process (Linux), or 0 where unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def release_memory() -> None:
    """Collect garbage and give freed heap back to the OS (glibc), so RSS deltas start clean."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class RSSPeak:
    """``with RSSPeak() as p: work()`` then ``p.peak_delta`` = max RSS growth (bytes) during work."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "RSSPeak":
        release_memory()
        self.baseline = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(self.peak, rss_bytes())
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_delta(self) -> int:
        return max(0, self.peak - self.baseline)


def peak_memory_during(fn: Callable[[], object], device: torch.device) -> dict[str, float | str]:
    """Peak memory of one ``fn()`` call: CUDA peak allocated (MB) or CPU peak RSS growth (MB)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return {"peak_mb": torch.cuda.max_memory_allocated(device) / 2**20, "memory_kind": "cuda_max_allocated"}
    with RSSPeak() as probe:
        fn()
    return {"peak_mb": probe.peak_delta / 2**20, "memory_kind": "cpu_rss_growth"}


def interleaved(tasks: dict[str, Callable[[], object]], rounds: int, device: torch.device,
                calls_per_round: dict[str, int] | None = None,
                on_round: Callable[[int], None] | None = None,
                cpu_samples: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall seconds per call of each task in each round (tasks run in turn, ``rounds`` times).

    ``cpu_samples``, if given, receives the process CPU seconds per call as well: on a CPU shared
    with other jobs, CPU time is what the work cost, whatever share of the cores it was given.
    """
    calls_per_round = calls_per_round or {}
    samples: dict[str, list[float]] = {name: [] for name in tasks}
    if cpu_samples is not None:
        cpu_samples.update({name: [] for name in tasks})
    for r in range(rounds):
        for name, fn in tasks.items():
            calls = max(1, calls_per_round.get(name, 1))
            synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / calls)
            if cpu_samples is not None:
                cpu_samples[name].append((time.process_time() - cpu_start) / calls)
        if on_round is not None:
            on_round(r)
    return samples


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")
