"""Data-pipeline throughput per worker: what one DataLoader worker can deliver.

Measured in this process with one torch and one OpenCV thread (a DataLoader worker gets one
torch thread; OpenCV is pinned to one here so that the number is per worker), over the records
of a manifest, through :class:`~r2mfnet.data.dataset.SegmentationDataset` exactly as training
uses it:

- ``decode+preprocess``: read the file, normalise intensities, letterbox (``cache=False``, the
  work of every epoch without the dataset cache);
- ``cached``: the same item from the dataset cache (``cache=True``, after ``preload``: what every
  epoch after the first costs with the cache, the default);
- ``cached+augment``: cached item plus the default augmentation (the default training path);
- ``decode+preprocess+augment``: without the cache, with augmentation.

Each item also pays the tensor conversion the dataset does; batching (collation) is not included.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from r2mfnet.data.dataset import SegmentationDataset


class _single_thread:
    """Run the block with one torch and one OpenCV thread (as a DataLoader worker would)."""

    def __enter__(self) -> "_single_thread":
        import cv2

        self._torch = torch.get_num_threads()
        self._cv2 = cv2.getNumThreads()
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        import cv2

        torch.set_num_threads(self._torch)
        cv2.setNumThreads(self._cv2)


STAGES: dict[str, dict[str, Any]] = {
    "decode+preprocess": dict(augment=None, cache=False),
    "cached": dict(augment=None, cache=True),
    "cached+augment": dict(augment={}, cache=True),  # {} = the default augmentation
    "decode+preprocess+augment": dict(augment={}, cache=False),
}


def make_data_tasks(records: Sequence[Any], image_size: tuple[int, int], items_per_call: int,
                    rates: dict[str, list[float]]) -> dict[str, Callable[[], None]]:
    """One task per stage of :data:`STAGES`; each call fetches ``items_per_call`` items on one
    thread (cycling through the records, a new augmentation epoch per pass) and appends its
    images/s to ``rates[stage]``."""
    tasks: dict[str, Callable[[], None]] = {}
    for name, opts in STAGES.items():
        ds = SegmentationDataset(records, image_size=image_size, **opts)
        if opts["cache"]:
            ds.preload()
        rates[name] = []
        state = {"next": 0, "epoch": 0}

        def run(ds: SegmentationDataset = ds, name: str = name, state: dict = state) -> None:
            with _single_thread():
                start = time.perf_counter()
                for _ in range(items_per_call):
                    if state["next"] == len(ds):
                        state["next"] = 0
                        state["epoch"] += 1
                        ds.set_epoch(state["epoch"])
                    ds[state["next"]]
                    state["next"] += 1
                rates[name].append(items_per_call / (time.perf_counter() - start))

        run()  # warm-up (imports, the augmentation pipeline's first call)
        rates[name].clear()
        tasks[f"data {name}"] = run
    return tasks


def synthetic_records(cache_dir: str | Path, num_cases: int, image_height: int, image_width: int) -> list:
    """Records of the cached synthetic data set with these parameters (generated once)."""
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.synthetic import ensure_dataset

    manifest = ensure_dataset(Path(cache_dir) / "synthetic", num_cases=num_cases, seed=0,
                              image_height=image_height, image_width=image_width)
    return load_manifest(manifest)
