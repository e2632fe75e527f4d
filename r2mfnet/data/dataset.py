"""The one dataset class used for every manifest (synthetic or real), plus :func:`load_view`.

Per item: read -> normalise to [0, 1] -> optional CLAHE -> letterbox to the model size ->
(train) augment with a seed derived from ``(seed, epoch, index)`` -> tensors.

With ``cache=True`` the letterboxed image (uint16, 1/65535 steps) and mask (bool) are kept after
the first read, so each file is decoded once per process. Call :meth:`SegmentationDataset.preload`
before creating a multi-worker ``DataLoader`` so that forked workers share the cache instead of
each filling (and, without ``persistent_workers``, losing) its own.

Augmentation never uses global random state: item ``i`` in epoch ``e`` always gets the same
augmentation for the same ``seed``, so a resumed run sees exactly the batches an uninterrupted
run would have seen.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import numpy as np

from r2mfnet.data.io import ImageData, read_image, read_mask
from r2mfnet.data.manifest import ViewRecord
from r2mfnet.data.preprocess import Letterbox, clahe as _clahe, normalize_intensity
from r2mfnet.errors import ConfigError, DataError

__all__ = ["SegmentationDataset", "load_view", "item_seed"]


def item_seed(seed: int, epoch: int, index: int) -> int:
    """Deterministic 63-bit seed for one item of one epoch (independent of worker or order)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF])
    hi, lo = (int(v) for v in ss.generate_state(2, dtype=np.uint32))
    return ((hi << 32) | lo) & ((1 << 63) - 1)


def load_view(
    record: ViewRecord,
    clahe: bool = False,
    low: float = 0.5,
    high: float = 99.5,
) -> tuple[np.ndarray, np.ndarray | None, ImageData]:
    """Read one view at its original resolution for inference and evaluation.

    Returns ``(image01, mask, image_data)``: the normalised float32 [0, 1] HxW image (CLAHE
    applied if asked, exactly as the dataset does before letterboxing), the bool mask (None if the
    record has none) and the raw :class:`ImageData` (bit depth, pixel spacing).
    """
    data = read_image(record.image)
    img = normalize_intensity(data.array, low, high)
    if clahe:
        img = _clahe(img)
    mask = None
    if record.mask is not None:
        mask = read_mask(record.mask)
        if mask.shape != img.shape:
            raise DataError(
                f"mask size {mask.shape[1]} x {mask.shape[0]} px differs from its image "
                f"'{record.image}' ({img.shape[1]} x {img.shape[0]} px); masks must match their "
                "image pixel for pixel",
                record.mask,
            )
    return img, mask, data


class SegmentationDataset:
    """A ``torch.utils.data.Dataset`` over manifest records.

    Item: ``{"image": float32 [1,H,W], "mask": float32 [1,H,W] in {0,1}, "case_id": str,
    "view": str (after a flip, the mirrored view), "quality": str ("" if unknown), "index": int}``.

    ``label_mode="vertebrae"`` adds ``"labels"``: int64 [H,W], 0 background, 1..17 = T1..L5,
    rasterised from each record's landmarks JSON (:mod:`r2mfnet.data.labels`), letterboxed and
    augmented together with the image (a flip mirrors it but keeps the classes). The default
    ``"binary"`` changes nothing.

    ``augment`` is an :class:`~r2mfnet.data.augment.Augmenter`, an augmentation config mapping
    (built here) or None. ``set_epoch(e)`` changes the augmentation draw deterministically.
    """

    def __init__(
        self,
        records: Sequence[ViewRecord],
        image_size: tuple[int, int] = (512, 256),
        augment=None,
        cache: bool = True,
        clahe: bool = False,
        seed: int = 0,
        require_masks: bool = True,
        label_mode: str = "binary",
    ):
        self.records = list(records)
        if not all(isinstance(r, ViewRecord) for r in self.records):
            raise ConfigError("SegmentationDataset expects a list of ViewRecord (see load_manifest)")
        try:
            h, w = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise ConfigError(f"image_size must be (height, width), got {image_size!r}") from None
        self.letterbox = Letterbox(h, w)
        self.image_size = (h, w)
        if isinstance(augment, Mapping):
            from r2mfnet.data.augment import build_augmentation

            augment = build_augmentation(augment, seed=seed)
        if augment is not None and not callable(augment):
            raise ConfigError(f"augment must be an Augmenter, a config mapping or None, got {type(augment).__name__}")
        self.augment = augment
        self.cache_enabled = bool(cache)
        self.clahe = bool(clahe)
        self.seed = int(seed)
        self.epoch = 0
        self.require_masks = bool(require_masks)
        if self.require_masks:
            missing = [f"{r.case_id}/{r.view}" for r in self.records if r.mask is None]
            if missing:
                raise DataError(
                    f"{len(missing)} record(s) have no mask but the dataset needs masks: "
                    f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
                )
        if label_mode not in ("binary", "vertebrae"):
            raise ConfigError(f"label_mode must be 'binary' or 'vertebrae', got {label_mode!r}")
        self.label_mode = label_mode
        if label_mode == "vertebrae" and augment is not None and not hasattr(augment, "with_labels"):
            raise ConfigError("label_mode='vertebrae' needs an Augmenter (or an augmentation config), not a plain callable")
        if label_mode == "vertebrae":
            missing = [f"{r.case_id}/{r.view}" for r in self.records if r.landmarks is None]
            if missing:
                raise DataError(
                    f"label_mode='vertebrae' needs a landmarks JSON per view (manifest column "
                    f"'landmarks'); {len(missing)} record(s) have none: "
                    f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
                )
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._labels: dict[int, np.ndarray] = {}
        self._shapes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (call at the start of every epoch)."""
        self.epoch = int(epoch)

    # ---- loading ------------------------------------------------------------------------
    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Letterboxed (image float32 [0,1] HxW, mask bool HxW)."""
        if self.cache_enabled and index in self._cache:
            img16, mask = self._cache[index]
            return img16.astype(np.float32) * np.float32(1.0 / 65535.0), mask
        r = self.records[index]
        img01, mask, _data = load_view(r, clahe=self.clahe)
        self._shapes[index] = img01.shape
        tf = self.letterbox.fit(img01.shape)
        img = tf.apply_image(img01)
        if mask is None:
            mask_lb = np.zeros(self.image_size, dtype=bool)
        else:
            mask_lb = tf.apply_mask(mask)
        # quantised to 1/65535 whether cached or not, so cache=True/False give identical items
        img16 = np.round(np.clip(img, 0.0, 1.0) * 65535.0).astype(np.uint16)
        if self.cache_enabled:
            self._cache[index] = (img16, mask_lb)
        return img16.astype(np.float32) * np.float32(1.0 / 65535.0), mask_lb

    def _load_labels(self, index: int) -> np.ndarray:
        """Letterboxed vertebra label map (uint8 HxW), cached like the image when ``cache``."""
        if index in self._labels:
            return self._labels[index]
        from r2mfnet.data.labels import letterbox_labels, read_label_map

        if index not in self._shapes:
            self._load(index)
        shape = self._shapes[index]
        labels = letterbox_labels(self.letterbox.fit(shape), read_label_map(self.records[index].landmarks, shape))
        if self.cache_enabled:
            self._labels[index] = labels
        return labels

    def preload(self, progress=None) -> None:
        """Fill the cache now (in this process). ``progress`` wraps the index iterator (tqdm)."""
        if not self.cache_enabled:
            return
        indices = range(len(self.records))
        for i in progress(indices) if progress is not None else indices:
            self._load(i)
            if self.label_mode == "vertebrae":
                self._load_labels(i)

    def __getitem__(self, index: int) -> dict:
        import torch

        if isinstance(index, torch.Tensor):
            index = int(index.item())
        index = int(index)
        if index < 0:
            index += len(self.records)
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} records")
        r = self.records[index]
        img, mask = self._load(index)
        view = r.view
        labels = self._load_labels(index) if self.label_mode == "vertebrae" else None
        if self.augment is not None:
            seed = item_seed(self.seed, self.epoch, index)
            if labels is None:
                img, mask, view = self.augment(img, mask, view, seed=seed)
            else:
                img, mask, labels, view = self.augment.with_labels(img, mask, labels, view, seed=seed)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)[None]),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)[None]),
            "case_id": r.case_id,
            "view": view,
            "quality": r.quality or "",
            "index": index,
        }
        if labels is not None:
            item["labels"] = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
        return item
