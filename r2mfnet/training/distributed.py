"""PyTorch DDP plumbing: start-up from ``torchrun``'s environment, rank helpers, reductions.

Only PyTorch's own ``torch.distributed`` is used. ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; on CPU the ``gloo`` backend is used, on CUDA ``nccl``.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from r2mfnet.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, checkpoints and results."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(strategy: str, device_type: str) -> DistInfo:
    """Initialise the process group when ``strategy == 'ddp'``; otherwise a single process."""
    if strategy not in ("auto", "single", "ddp"):
        raise ConfigError(f"trainer.strategy must be 'auto', 'single' or 'ddp', got '{strategy}'")
    if strategy != "ddp":
        return DistInfo()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ConfigError(
            "trainer.strategy=ddp needs torchrun's environment (RANK, WORLD_SIZE): launch with "
            "'torchrun --nproc_per_node=N scripts/train.py trainer.strategy=ddp ...'"
        )
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: object) -> list[object]:
    """Gather one picklable object per rank (used for per-case validation rows)."""
    if dist.is_available() and dist.is_initialized():
        out: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send ``obj`` from rank ``src`` to every rank (e.g. the early-stopping decision)."""
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (e.g. generating a cached data set
    once instead of every rank racing to write it). Rank 0 releases the others even if it fails."""
    active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if active and dist.get_rank() != 0:
        dist.barrier()
    try:
        yield
    finally:
        if active and dist.get_rank() == 0:
            dist.barrier()
