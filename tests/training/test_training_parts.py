"""Unit tests of the trainer's parts: loss, schedule, sampler, checkpoints, early stopping."""
from __future__ import annotations

import math

import pytest
import torch

from r2mfnet.errors import CheckpointError, ConfigError
from r2mfnet.checkpoint import load_checkpoint, save_checkpoint
from r2mfnet.training.early_stopping import EarlyStopping
from r2mfnet.training.losses import DiceCELoss, cross_entropy_loss, gap_pixels, soft_dice_loss
from r2mfnet.training.sampler import EpochSampler
from r2mfnet.training.schedule import build_scheduler, lr_factor


def test_soft_dice_hand_computed():
    # Probabilities 0.5 everywhere on 4 pixels, target has 2 foreground pixels:
    # inter = 1.0, denom = 2 + 2 = 4, dice = (2*1 + 1) / (4 + 1) = 0.6
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - 0.6)


def test_loss_counts_shared_tensor_once_and_weights_stages():
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    loss = DiceCELoss(stage_weights={"logits": 1.0, "coarse_logits": 0.5})
    single = loss({"logits": logits}, target)
    shared = loss({"logits": logits, "coarse_logits": logits}, target)
    assert shared.item() == pytest.approx(single.item())
    both = loss({"logits": logits, "coarse_logits": logits.clone()}, target)
    assert both.item() == pytest.approx(1.5 * single.item(), rel=1e-6)


def test_multiclass_loss_is_small_for_correct_prediction():
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 20
    wrong = torch.roll(perfect, 1, dims=1)
    loss = DiceCELoss()
    assert loss({"logits": perfect}, target) < 0.05 < loss({"logits": wrong}, target)


def test_gap_pixels_are_the_narrow_background_between_vertebrae():
    mask = torch.zeros(1, 1, 12, 7)
    mask[0, 0, 1:4, 2:5] = 1  # vertebra A
    mask[0, 0, 5:8, 2:5] = 1  # vertebra B, one row below A's gap at row 4
    mask[0, 0, 10:12, 2:5] = 1  # vertebra C, a two-row gap (rows 8-9) below B
    gap = gap_pixels(mask, 3)[0, 0]
    expected = torch.zeros(12, 7)
    expected[4, 2:5] = 1
    expected[8:10, 2:5] = 1
    assert torch.equal(gap, expected)  # the image border and the sides of the column are not gaps
    assert gap_pixels(mask, 5)[0, 0].sum() == 9  # a wider window: the same gaps (none wider)
    holes = torch.zeros(1, 1, 9, 9)
    holes[0, 0, 2:7, 2:7] = 1
    holes[0, 0, 4, 4] = 0
    assert gap_pixels(holes, 3)[0, 0].nonzero().tolist() == [[4, 4]]


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_gap_pixels_match_a_closing_with_one_square_max_pool(kernel):
    """The two-pass (column, row) max equals the square max-pool it replaces, border included."""
    import torch.nn.functional as F

    torch.manual_seed(kernel)
    target = (torch.rand(3, 1, 23, 17) > 0.6).float()
    pad = kernel // 2
    canvas = F.pad(target, (2 * pad,) * 4, value=0.0)
    closed = -F.max_pool2d(-F.max_pool2d(canvas, kernel, 1, pad), kernel, 1, pad)
    expected = closed[..., 2 * pad:2 * pad + 23, 2 * pad:2 * pad + 17] * (1 - target)
    assert expected.sum() > 0 and torch.equal(gap_pixels(target, kernel), expected)


def test_gap_weighted_cross_entropy_hand_computed():
    target = torch.tensor([[[[1.0, 0.0, 1.0]]]])  # the middle pixel is a one-pixel gap
    logits = torch.tensor([[[[0.0, 0.0, 0.0]]]])  # every pixel costs log 2
    logits_gap_wrong = torch.tensor([[[[2.0, 2.0, 2.0]]]])
    assert cross_entropy_loss(logits, target, gap_weight=4.0, gap_kernel=3) == pytest.approx(math.log(2))
    plain = cross_entropy_loss(logits_gap_wrong, target)
    weighted = cross_entropy_loss(logits_gap_wrong, target, gap_weight=4.0, gap_kernel=3)
    fg, bg = math.log1p(math.exp(-2.0)), math.log1p(math.exp(2.0))
    assert plain == pytest.approx((2 * fg + bg) / 3)
    assert weighted == pytest.approx((2 * fg + 5 * bg) / 7)  # the gap pixel weighs 1 + 4
    loss = DiceCELoss(gap_weight=4.0, gap_kernel=3)
    assert loss({"logits": logits_gap_wrong}, target) > DiceCELoss()({"logits": logits_gap_wrong}, target)


def test_schedule_warmup_then_cosine_to_floor():
    assert lr_factor(0, 100, 10, "cosine", 0.0, 0.9) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine", 0.0, 0.9) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.0, 0.9) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine", 0.01, 0.9) == pytest.approx(0.01)
    assert lr_factor(55, 100, 10, "poly", 0.0, 1.0) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="schedule"):
        build_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1), 10, kind="step")


def test_sampler_is_deterministic_resumable_and_shards_cover_everything():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert sorted(full) == list(range(10))
    s.set_epoch(2, start_index=4)
    assert list(s) == full[4:]
    s.set_epoch(3)
    assert list(s) != full
    shards = []
    for rank in range(2):
        r = EpochSampler(10, seed=3, rank=rank, world_size=2)
        r.set_epoch(2)
        shards.append(list(r))
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10))
    # rank r takes every world_size-th item of the same permutation: a global batch is unchanged
    assert [x for pair in zip(*shards) for x in pair] == full


def test_checkpoint_roundtrip_and_corruption_detected(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model_config": {"name": "unet"}, "model": {"w": torch.arange(5.0)}})
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.arange(5.0))
    assert not list(tmp_path.glob("*.tmp*")), "no temporary file may be left behind"

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.pt"):
        load_checkpoint(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_version_1_r2mfnet_checkpoint_keeps_its_from_scratch_fine_network(tmp_path):
    from r2mfnet.models import create
    from r2mfnet.checkpoint import load_model

    torch.manual_seed(0)
    old = create("r2mfnet", base_channels=4, depth=2, fine_residual=False).eval()
    config = {k: v for k, v in old.model_config.items() if k != "fine_residual"}  # as version 1 wrote it
    save_checkpoint(tmp_path / "v1.pt", {"version": 1, "model_config": config, "model": old.state_dict()})
    rebuilt = load_model(tmp_path / "v1.pt")
    assert rebuilt.fine_residual is False
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x)["logits"], old(x)["logits"])


def test_checkpoints_older_than_the_vertebra_options_keep_their_network(tmp_path):
    """coarse_classes / fine_coords did not exist in version 2: an 18-class checkpoint of then
    (18-class coarse network, no row input) must load as it was, and an old binary run must
    still resume under today's config (coarse_classes: 1 means the same for one class)."""
    from r2mfnet.models import create
    from r2mfnet.checkpoint import load_model, same_model

    torch.manual_seed(0)
    old = create("r2mfnet", num_classes=18, base_channels=4, depth=2).eval()
    config = {k: v for k, v in old.model_config.items() if k not in ("coarse_classes", "fine_coords")}
    save_checkpoint(tmp_path / "v2.pt", {"version": 2, "model_config": config, "model": old.state_dict()})
    rebuilt = load_model(tmp_path / "v2.pt")
    assert rebuilt.coarse_classes == 18 and rebuilt.fine_coords is False
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x)["logits"], old(x)["logits"])
    binary_then = {"name": "r2mfnet", "num_classes": 1, "base_channels": 4}
    binary_now = {**binary_then, "coarse_classes": 1, "fine_coords": None}
    assert same_model(binary_then, binary_now) == []
    vertebrae_then = {**binary_then, "num_classes": 18}
    assert same_model(vertebrae_then, {**vertebrae_then, "coarse_classes": 1, "fine_coords": None}) == [
        "coarse_classes", "fine_coords"]
    assert same_model(binary_now, {**binary_now, "base_channels": 8}) == ["base_channels"]


def test_coarse_stage_checkpoint_predicts_with_the_coarse_network(tmp_path):
    """best_coarse.pt's fine network was never trained: loading it must not run it."""
    from r2mfnet.models import create
    from r2mfnet.checkpoint import load_model

    torch.manual_seed(0)
    model = create("r2mfnet", base_channels=4, depth=2).eval()
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        expected = model(x)
    for stage, key in (("coarse", "coarse_logits"), ("fine", "logits")):
        save_checkpoint(tmp_path / f"{stage}.pt", {"model_config": dict(model.model_config),
                                                  "model": model.state_dict(), "stage": stage})
        with torch.no_grad():
            got = load_model(tmp_path / f"{stage}.pt")(x)["logits"]
        torch.testing.assert_close(got, expected[key])
    assert not torch.allclose(expected["logits"], expected["coarse_logits"])


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    from pathlib import Path

    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"model_config": {}, "model": {"v": 1}})
    written: list[tuple[Path, int]] = []
    real_write_bytes = Path.write_bytes

    def killed_half_way(self, data):
        # the checkpoint's bytes are going to disk: half of them land, then the process is killed
        real_write_bytes(self, data[: len(data) // 2])
        written.append((self, len(data) // 2))
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model_config": {}, "model": {"v": 2, "w": torch.zeros(1000)}})
    monkeypatch.undo()
    # the kill struck while file bytes were being written (not before), into a file beside the target
    assert len(written) == 1 and written[0][1] > 2000 and written[0][0].parent == tmp_path
    assert written[0][0] != path
    assert load_checkpoint(path)["model"]["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]  # no half file left behind


def test_early_stopping_patience_and_state():
    es = EarlyStopping(patience=2, min_delta=0.01)
    assert es.step(0.5) and not es.should_stop
    assert not es.step(0.505)  # not better by min_delta
    assert not es.should_stop
    assert not es.step(0.4)
    assert es.should_stop
    other = EarlyStopping(patience=2)
    other.load_state_dict(es.state_dict())
    assert other.best == 0.5 and other.should_stop
    assert EarlyStopping(patience=0).best == -math.inf
