"""A deterministic, resumable, shardable batch order.

The order of epoch ``e`` is a permutation drawn from ``seed + e`` alone, so a resumed run sees
exactly the same batches as an uninterrupted one, and ``start_index`` lets it skip the part of
an epoch that was already trained. With several ranks each takes every ``world_size``-th index of
the same permutation (padded by wrapping so every rank sees the same number of samples), as
``DistributedSampler`` does, so a global batch is the same whatever the number of processes.

With ``with_epoch=True`` the sampler yields ``(epoch, index)`` pairs for
:class:`~r2mfnet.training.epoch_data.EpochIndexed`: the epoch then reaches persistent DataLoader
workers, which never see a ``set_epoch`` called on the dataset in the main process.
"""
from __future__ import annotations

from typing import Iterator, Union

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[Union[int, tuple[int, int]]]):
    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        with_epoch: bool = False,
    ) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.with_epoch = with_epoch
        self.epoch = 0
        self.start_index = 0

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        """Select the epoch's permutation; skip its first ``start_index`` samples of this rank."""
        self.epoch = epoch
        self.start_index = start_index

    def rank_indices(self) -> list[int]:
        """This rank's whole share of the current epoch's order (``start_index`` not applied)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            order = list(range(self.num_samples))
        if self.world_size > 1:
            if self.drop_last:
                usable = (len(order) // self.world_size) * self.world_size
                order = order[:usable]
            else:
                total = -(-len(order) // self.world_size) * self.world_size
                order = (order * (total // max(1, len(order)) + 1))[:total]
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[int | tuple[int, int]]:
        indices = self.rank_indices()[self.start_index :]
        if self.with_epoch:
            epoch = self.epoch
            return iter([(epoch, i) for i in indices])
        return iter(indices)

    def __len__(self) -> int:
        return len(self.rank_indices()) - self.start_index
