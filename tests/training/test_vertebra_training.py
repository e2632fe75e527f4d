"""Vertebra-level training (18 classes): every registry model learns from label maps; the
trainer feeds the labels to the loss; configs check that labels and ``num_classes`` agree."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from r2mfnet.training.run_config import validate
from r2mfnet.data.dataset import SegmentationDataset
from r2mfnet.data.manifest import load_manifest
from r2mfnet.errors import ConfigError
from r2mfnet.models import available_models, create
from r2mfnet.training.config import TrainerConfig
from r2mfnet.training.losses import DiceCELoss
from r2mfnet.training.trainer import Trainer
from tests.helpers import compose_config

SIZE = (64, 32)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vertebra_set(tmp_path_factory) -> SegmentationDataset:
    from r2mfnet.data.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path_factory.mktemp("syn") / "d", num_cases=2, seed=5,
                                image_height=128, image_width=64, num_workers=0)
    return SegmentationDataset(load_manifest(manifest), image_size=SIZE, label_mode="vertebrae")


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & gt).sum()) / total


def _recomputed_val_dice(checkpoint: Path, dataset: SegmentationDataset) -> dict[str, float]:
    """The validation Dice of a saved checkpoint, recomputed here in numpy from its predictions.

    Independent of :mod:`r2mfnet.training.validation`: one channel -> Dice of ``logit > 0``
    against the union of the labels; several -> foreground where ``p(background) < 0.5``, then the
    most probable vertebra class; the mean over the classes present in prediction or ground truth
    of the per-class Dice, averaged over images; the union Dice beside it.
    """
    from r2mfnet.checkpoint import load_trained

    model = load_trained(checkpoint).model
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        logits = model(batch["image"])["logits"].double().numpy()
    labels = batch["labels"].numpy()
    per_image, unions = [], []
    for lg, gt in zip(logits, labels):
        if lg.shape[0] == 1:
            per_image.append(_dice(lg[0] > 0, gt > 0))
            continue
        p = np.exp(lg - lg.max(0))
        p /= p.sum(0)
        pred = np.where(p[0] < 0.5, p[1:].argmax(0) + 1, 0)
        present = [k for k in range(1, lg.shape[0]) if (pred == k).any() or (gt == k).any()]
        per_image.append(float(np.mean([_dice(pred == k, gt == k) for k in present])))
        unions.append(_dice(pred > 0, gt > 0))
    out = {"dice": float(np.mean(per_image))}
    if unions:
        out["dice_union"] = float(np.mean(unions))
    return out


@pytest.mark.parametrize("name", available_models())
def test_every_model_learns_vertebra_labels(name, vertebra_set):
    torch.manual_seed(0)
    model = create(name, num_classes=18, base_channels=4, depth=3)
    batch = torch.utils.data.default_collate([vertebra_set[i] for i in range(2)])
    assert batch["labels"].dtype == torch.int64 and tuple(batch["labels"].shape) == (2, *SIZE)
    loss_fn = DiceCELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        out = model(batch["image"])
        assert out["logits"].shape == (2, 18, *SIZE)
        loss = loss_fn(out, batch["labels"])
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses


def test_trainer_feeds_labels_through_both_stages(vertebra_set, tmp_path):
    torch.manual_seed(0)
    model = create("r2mfnet", num_classes=18, base_channels=4, depth=3)
    cfg = TrainerConfig(coarse_epochs=1, fine_epochs=1, device="cpu", progress=False, warmup_steps=1,
                        log_every_steps=1, log_images=1)
    trainer = Trainer(model, vertebra_set, vertebra_set, cfg, tmp_path / "run", batch_size=3,
                      preprocess={"input_size": list(SIZE), "clahe": False})
    result = trainer.fit()
    assert [h["stage"] for h in result.history] == ["coarse", "fine"]
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()
    # the reported Dice is the per-class mean of best.pt's own predictions (one fine epoch: the
    # best is the last), recomputed here; a union Dice or an argmax over all classes would differ
    again = _recomputed_val_dice(result.best_checkpoint, vertebra_set)
    fine = result.history[-1]
    assert fine["val_dice"] == pytest.approx(again["dice"], abs=1e-6)
    assert fine["val_dice_union"] == pytest.approx(again["dice_union"], abs=1e-6)
    assert again["dice_union"] - again["dice"] > 0.05  # the two rules are told apart on this case
    # the trained 18-class model predicts a foreground probability and vertebra labels
    from r2mfnet.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(result.best_checkpoint, device="cpu")
    image = np.random.default_rng(0).random((100, 50)).astype(np.float32)
    assert predictor.predict_probability(image).shape == (100, 50)
    labels = predictor.predict_label_maps([image])[0]
    assert labels.shape == (100, 50) and labels.dtype == np.uint8 and labels.max() <= 17
    assert np.array_equal(labels > 0, predictor.predict_mask(image))  # same foreground rule


def test_configs_check_labels_against_num_classes():
    run = validate(compose_config(["experiment=[smoke,vertebrae]"]))
    assert run.data.labels == "vertebrae" and run.model["num_classes"] == 18
    for overrides, match in [
        (["data.labels=vertebrae"], "num_classes=18"),
        (["model.num_classes=18"], "data.labels=vertebrae"),
        (["data.labels=levels"], "binary' or 'vertebrae"),
    ]:
        with pytest.raises(ConfigError, match=match):
            validate(compose_config(overrides))
    assert validate(compose_config([])).data.labels == "binary"


def test_binary_coarse_stage_starts_the_fine_stage_from_its_mask():
    """``coarse_classes=1``: the coarse network outputs one channel, and with a zero fine
    correction the 18-class softmax keeps exactly the coarse mask (p(background) = sigmoid(-c))."""
    torch.manual_seed(0)
    model = create("r2mfnet", num_classes=18, coarse_classes=1, base_channels=4, depth=2).eval()
    torch.nn.init.zeros_(model.fine.head.weight)
    torch.nn.init.zeros_(model.fine.head.bias)
    out = model(torch.randn(2, 1, 32, 16))
    assert out["coarse_logits"].shape == (2, 1, 32, 16) and out["logits"].shape == (2, 18, 32, 16)
    prob = torch.softmax(out["logits"], 1)
    assert torch.allclose(prob[:, :1], torch.sigmoid(-out["coarse_logits"]), atol=1e-6)
    assert torch.allclose(prob[:, 1], prob[:, 17])  # no level preferred before training
    for bad in (2, 17, 0):
        with pytest.raises(ConfigError, match="coarse_classes"):
            create("r2mfnet", num_classes=18, coarse_classes=bad, base_channels=4, depth=2)


def test_trainer_trains_a_binary_coarse_stage_then_vertebra_levels(vertebra_set, tmp_path):
    torch.manual_seed(0)
    model = create("r2mfnet", num_classes=18, coarse_classes=1, base_channels=4, depth=3)
    cfg = TrainerConfig(coarse_epochs=1, fine_epochs=1, device="cpu", progress=False, warmup_steps=1)
    trainer = Trainer(model, vertebra_set, vertebra_set, cfg, tmp_path / "run", batch_size=3,
                      preprocess={"input_size": list(SIZE), "clahe": False})
    history = trainer.fit().history
    assert "val_dice_union" not in history[0]  # the coarse stage is scored as a binary mask
    # each stage's reported Dice is that of its own best checkpoint's predictions, recomputed here:
    # the coarse stage's one channel against the union of the labels, the fine stage per class
    ckpts = tmp_path / "run" / "checkpoints"
    assert history[0]["val_dice"] == pytest.approx(_recomputed_val_dice(ckpts / "best_coarse.pt", vertebra_set)["dice"], abs=1e-6)
    again = _recomputed_val_dice(ckpts / "best.pt", vertebra_set)
    assert history[1]["val_dice"] == pytest.approx(again["dice"], abs=1e-6)
    assert history[1]["val_dice_union"] == pytest.approx(again["dice_union"], abs=1e-6)
    from r2mfnet.inference.predictor import Predictor

    coarse = Predictor.from_checkpoint(tmp_path / "run" / "checkpoints" / "best_coarse.pt", device="cpu")
    image = np.random.default_rng(0).random((100, 50)).astype(np.float32)
    assert coarse.predict_mask(image).shape == (100, 50)  # the coarse stage alone: a binary mask
    with pytest.raises(ConfigError, match="num_classes=1"):
        coarse.predict_label_maps([image])
    best = Predictor.from_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", device="cpu")
    labels = best.predict_label_maps([image])[0]
    assert labels.shape == (100, 50) and labels.max() <= 17


def test_fine_coords_tell_the_fine_network_the_row():
    from r2mfnet.models.r2mfnet import _row_coordinate

    rows = _row_coordinate(torch.zeros(2, 1, 5, 3))
    assert rows.shape == (2, 1, 5, 3)
    assert rows[0, 0, :, 0].tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert torch.equal(rows[1, 0, :, 2], rows[0, 0, :, 0])  # the same for every column and image
    torch.manual_seed(0)
    with_rows = create("r2mfnet", num_classes=18, coarse_classes=1, fine_coords=True, base_channels=4, depth=2)
    assert with_rows.fine.encoder[0].conv3x3.in_channels == 1 + 1 + 1  # image, coarse mask, row
    out = with_rows(torch.randn(1, 1, 32, 16))
    assert out["logits"].shape == (1, 18, 32, 16)
    torch.manual_seed(0)
    without = create("r2mfnet", num_classes=18, coarse_classes=1, base_channels=4, depth=2)
    assert without.fine.encoder[0].conv3x3.in_channels == 2
