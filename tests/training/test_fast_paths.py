"""Fast paths stay exact: persistent DataLoader workers see every epoch's augmentation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from r2mfnet.data.dataset import SegmentationDataset
from r2mfnet.data.manifest import load_manifest
from r2mfnet.checkpoint import load_checkpoint
from r2mfnet.training.epoch_data import EpochIndexed
from r2mfnet.training.run import train
from r2mfnet.training.sampler import EpochSampler
from tests.helpers import compose_config, tiny_overrides

AUG = {"hflip_p": 0.5, "affine_p": 1.0, "noise_p": 1.0}


def _dataset(manifest: Path) -> SegmentationDataset:
    ds = SegmentationDataset(load_manifest(manifest), image_size=(32, 16), augment=AUG, seed=3)
    ds.preload()
    return ds


def _epochs(loader: DataLoader, sampler: EpochSampler, dataset, epochs: int = 2) -> list[torch.Tensor]:
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)  # what the trainer does in the main process
        out.append(torch.cat([b["image"] for b in loader]))
    return out


def test_epoch_travels_with_the_index_to_persistent_workers(tiny_manifest):
    ds = _dataset(tiny_manifest)
    expected = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        sampler = EpochSampler(len(ds), seed=1)
        sampler.set_epoch(epoch)
        expected.append(torch.stack([ds[i]["image"] for i in sampler]))
    assert not torch.equal(expected[0], expected[1])

    sampler = EpochSampler(len(ds), seed=1, with_epoch=True)
    loader = DataLoader(EpochIndexed(ds), batch_size=4, sampler=sampler, num_workers=2, persistent_workers=True)
    got = _epochs(loader, sampler, ds)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)

    # the bug this guards against: plain indices + persistent workers repeat epoch 0's augmentation
    plain = EpochSampler(len(ds), seed=1)
    stale = DataLoader(ds, batch_size=4, sampler=plain, num_workers=2, persistent_workers=True)
    ds.set_epoch(0)
    got = _epochs(stale, plain, ds)
    assert not torch.equal(expected[1], got[1])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_persistent_workers_train_exactly_like_no_workers(tmp_path, cache_dir):
    base = tiny_overrides(cache_dir, "trainer.coarse_epochs=2", "trainer.fine_epochs=0",
                          "evaluate_after_training=false", "data.input_height=32", "data.input_width=16")
    a = train(compose_config([*base, "data.num_workers=0"]), tmp_path / "w0")
    b = train(compose_config([*base, "data.num_workers=2", "data.persistent_workers=true"]), tmp_path / "w2")
    wa = load_checkpoint(a["train"].latest_checkpoint)["model"]
    wb = load_checkpoint(b["train"].latest_checkpoint)["model"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("name", ["r2mfnet", "unetpp"])
def test_channels_last_inference_gives_the_same_probabilities(name):
    import numpy as np

    from r2mfnet.inference.predictor import Predictor
    from r2mfnet.models import create

    torch.manual_seed(0)
    model = create(name, base_channels=4, depth=2)
    image = np.random.default_rng(0).random((70, 33)).astype(np.float32)
    plain = Predictor(model, input_size=(32, 16), device="cpu", channels_last=False)
    fast = Predictor(model, input_size=(32, 16), device="cpu", channels_last=True)
    a = plain.predict_probability(image)
    b = fast.predict_probability(image)
    assert a.shape == image.shape
    np.testing.assert_allclose(a, b, atol=1e-5)
