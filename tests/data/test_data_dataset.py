"""SegmentationDataset items, caching, epoch-seeded augmentation; load_view at original size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from r2mfnet.data.augment import build_augmentation
from r2mfnet.data.dataset import SegmentationDataset, item_seed, load_view
from r2mfnet.data.manifest import ViewRecord, load_manifest
from r2mfnet.errors import ConfigError, DataError


def test_items_follow_contract(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    ds = SegmentationDataset(recs, image_size=(32, 24))
    assert len(ds) == 9
    item = ds[4]
    assert set(item) == {"image", "mask", "case_id", "view", "quality", "index"}
    assert item["image"].dtype == torch.float32 and tuple(item["image"].shape) == (1, 32, 24)
    assert item["mask"].dtype == torch.float32 and tuple(item["mask"].shape) == (1, 32, 24)
    assert set(torch.unique(item["mask"]).tolist()) == {0.0, 1.0}
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["case_id"] == recs[4].case_id and item["view"] == recs[4].view
    assert item["quality"] == recs[4].quality and item["index"] == 4
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    assert tuple(batch["image"].shape) == (3, 1, 32, 24)


def test_cache_gives_identical_items(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    cached = SegmentationDataset(recs, image_size=(32, 24), cache=True)
    plain = SegmentationDataset(recs, image_size=(32, 24), cache=False)
    cached.preload()
    assert len(cached._cache) == 9 and cached._cache[0][0].dtype == np.uint16
    for i in (0, 5):
        a, b = cached[i], plain[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    # served from the cache even if the file disappears
    recs[0].image.unlink()
    assert cached[0]["image"].shape == (1, 32, 24)
    with pytest.raises(DataError, match="not found"):
        plain[0]


def test_augmentation_deterministic_per_epoch(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    mk = lambda: SegmentationDataset(recs, (32, 24), augment=build_augmentation({}), seed=5)  # noqa: E731
    a, b = mk(), mk()
    a.set_epoch(3)
    b.set_epoch(3)
    order = [7, 2, 5, 0]
    xa = [a[i]["image"] for i in order]
    xb = [b[i]["image"] for i in reversed(order)][::-1]  # access order does not matter
    assert all(torch.equal(p, q) for p, q in zip(xa, xb))
    b.set_epoch(4)
    assert not all(torch.equal(a[i]["image"], b[i]["image"]) for i in order)
    assert item_seed(5, 3, 7) == item_seed(5, 3, 7) != item_seed(5, 4, 7)
    # augment given as a config mapping is built by the dataset
    c = SegmentationDataset(recs, (32, 24), augment={"hflip_p": 1.0}, seed=0)
    views = {c[i]["view"] for i in range(len(c))}
    assert views == {"coronal", "left_bending", "right_bending"}
    assert c[1]["view"] == "right_bending" and recs[1].view == "left_bending"


def test_dataloader_with_workers(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    ds = SegmentationDataset(recs, (32, 24), augment=build_augmentation({}), seed=1)
    ds.preload()
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, shuffle=False)
    batches = list(loader)
    assert sum(b["image"].shape[0] for b in batches) == 9
    direct = torch.stack([ds[i]["image"] for i in range(4)])
    assert torch.equal(batches[0]["image"], direct)


def test_load_view_original_size(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    img, mask, data = load_view(recs[0])
    assert img.shape == (64, 48) and img.dtype == np.float32 and mask.shape == (64, 48) and mask.dtype == bool
    assert img.min() == 0.0 and img.max() == 1.0 and data.bit_depth == 8
    no_mask = ViewRecord(case_id="x", view="coronal", image=recs[0].image)
    assert load_view(no_mask)[1] is None


def test_dataset_rejects_bad_setup(tiny_manifest):
    recs = load_manifest(tiny_manifest)
    with pytest.raises(ConfigError):
        SegmentationDataset(recs, image_size=(0, 10))
    with pytest.raises(ConfigError, match="unknown key"):
        SegmentationDataset(recs, image_size=(32, 24), augment={"flip": 1})
    with pytest.raises(DataError, match="no mask"):
        SegmentationDataset([ViewRecord(case_id="x", view="coronal", image=recs[0].image)], (32, 24))
