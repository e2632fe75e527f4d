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
from typing import Any, Sequence

import torch

from r2mfnet.data.dataset import SegmentationDataset


def _items_per_second(dataset: SegmentationDataset, indices: Sequence[int], min_seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        for i in indices:
            dataset[i]
            done += 1
        epoch += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


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


def data_throughput(records: Sequence[Any], image_size: tuple[int, int], augment: dict | None = None,
                    min_seconds: float = 1.0, max_items: int = 64) -> dict[str, float]:
    """Images per second per worker for each pipeline stage (see the module docstring)."""
    augment = {} if augment is None else dict(augment)  # {} = the default augmentation
    indices = list(range(min(len(records), max_items)))
    out: dict[str, float] = {}
    with _single_thread():
        raw = SegmentationDataset(records, image_size=image_size, augment=None, cache=False)
        out["decode+preprocess"] = _items_per_second(raw, indices, min_seconds)
        cached = SegmentationDataset(records, image_size=image_size, augment=None, cache=True)
        for i in indices:
            cached[i]
        out["cached"] = _items_per_second(cached, indices, min_seconds)
        aug = SegmentationDataset(records, image_size=image_size, augment=augment, cache=True)
        for i in indices:
            aug._load(i)
        out["cached+augment"] = _items_per_second(aug, indices, min_seconds)
        raw_aug = SegmentationDataset(records, image_size=image_size, augment=augment, cache=False)
        out["decode+preprocess+augment"] = _items_per_second(raw_aug, indices, min_seconds)
    return out


def synthetic_records(cache_dir: str | Path, num_cases: int, image_height: int, image_width: int) -> list:
    """Records of the cached synthetic data set with these parameters (generated once)."""
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.synthetic import ensure_dataset

    manifest = ensure_dataset(Path(cache_dir) / "synthetic", num_cases=num_cases, seed=0,
                              image_height=image_height, image_width=image_width)
    return load_manifest(manifest)
