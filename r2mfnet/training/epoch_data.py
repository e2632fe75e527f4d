"""Let the epoch travel with each index, so DataLoader workers need no shared state.

The dataset's augmentation draw depends on its epoch (``SegmentationDataset.set_epoch``). Calling
``set_epoch`` in the main process reaches worker processes only if they are re-created every
epoch: ``persistent_workers=True`` keeps the copies forked at the first epoch, which would then
augment every later epoch like the first one. Here the :class:`~r2mfnet.training.sampler.
EpochSampler` (which lives in the main process) yields ``(epoch_key, index)`` pairs and
:class:`EpochIndexed` selects that epoch in whichever process fetches the item, so a run is
identical with 0 workers, fresh workers or persistent workers.
"""
from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset


class EpochIndexed(Dataset):
    """Wrap ``dataset`` (optionally with ``set_epoch``) to accept ``(epoch, index)`` keys.

    A plain integer key is passed through unchanged (the dataset's current epoch is used).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self._has_epoch = hasattr(dataset, "set_epoch")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            epoch, index = key
            if self._has_epoch and getattr(self.dataset, "epoch", None) != epoch:
                self.dataset.set_epoch(int(epoch))
            return self.dataset[int(index)]
        return self.dataset[key]
