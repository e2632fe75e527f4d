"""R2MF-Net's region-of-interest cascade (``fine_crop``): box maths, roi_align crops, paste-back,
training boxes from the ground truth, eval boxes from the coarse mask, configs, the trainer."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from r2mfnet.errors import ConfigError
from r2mfnet.models import create
from r2mfnet.models.blocks import roi
from r2mfnet.models.r2mfnet import _row_coordinate

from ._helpers import outputs_loss

INPUT = (128, 64)
ROI = dict(base_channels=4, depth=2, fine_crop=True, coarse_size=[64, 32], crop_size=[64, 32])


def _spine_mask(batch: int = 2) -> torch.Tensor:
    mask = torch.zeros(batch, 1, *INPUT)
    mask[:, :, 20:100, 25:40] = 1
    return mask


# ----------------------------------------------------------------------------- box maths
def test_mask_boxes_are_tight_on_pixel_edges_and_empty_means_whole_image():
    mask = torch.zeros(3, 10, 8, dtype=torch.bool)
    mask[0, 3, 5] = True  # one pixel: row 3, column 5
    mask[1, 2:7, 1:4] = True
    mask[1, 9, 7] = True  # a second blob stretches the box to the corner
    boxes = roi.mask_boxes(mask)
    assert boxes.tolist() == [[5, 3, 6, 4], [1, 2, 8, 10], [0, 0, 8, 10]]


def test_fit_boxes_margin_aspect_minimum_and_image_border():
    boxes = torch.tensor([
        [20.0, 30.0, 30.0, 90.0],  # 10 x 60 -> margin 12 x 72 -> crop aspect 1:2 -> 36 x 72
        [0.0, 0.0, 10.0, 10.0],  # tiny, in the corner: grown to the crop size, moved inside
        [0.0, 0.0, 64.0, 128.0],  # the whole image plus margin: shrunk back to the image
        [50.5, 100.2, 60.0, 127.0],  # bottom right: moved inside, whole pixels
    ])
    fitted = roi.fit_boxes(boxes, INPUT, (64, 32), margin=0.1)
    assert fitted.tolist() == [[7, 24, 43, 96], [0, 0, 32, 64], [0, 0, 64, 128], [32, 64, 64, 128]]


def test_jitter_stays_within_its_bounds_and_uses_them():
    box = torch.tensor([[10.0, 20.0, 30.0, 100.0]])  # 20 x 80, centre (20, 60)
    jittered = roi.jitter_boxes(box.expand(4000, 4), shift=0.1, scale=(0.9, 1.2))
    size = jittered[:, 2:] - jittered[:, :2]
    factor = size / (box[:, 2:] - box[:, :2])
    shift = ((jittered[:, :2] + jittered[:, 2:]) / 2 - torch.tensor([20.0, 60.0])) / torch.tensor([20.0, 80.0])
    assert torch.allclose(factor[:, 0], factor[:, 1])  # one factor for both sides: aspect kept
    assert factor.min() >= 0.9 - 1e-6 and factor.max() <= 1.2 + 1e-6
    assert shift.abs().max() <= 0.1 + 1e-6
    assert factor.min() < 0.91 and factor.max() > 1.19 and shift.abs().max() > 0.099  # bounds used
    torch.manual_seed(3)
    a = roi.jitter_boxes(box, 0.1, (0.9, 1.2))
    torch.manual_seed(3)
    assert torch.equal(a, roi.jitter_boxes(box, 0.1, (0.9, 1.2)))  # torch's RNG: resumable


# ------------------------------------------------------------------- crops and paste-back
def test_crop_of_exactly_the_box_size_is_a_slice_and_pastes_back_to_the_pixel():
    image = torch.rand(2, 3, 40, 30)
    boxes = torch.tensor([[5.0, 7.0, 21.0, 31.0], [5.0, 16.0, 21.0, 40.0]])  # both 16 x 24
    crops = roi.crop(image, boxes, (40, 30), (24, 16))
    torch.testing.assert_close(crops[0], image[0, :, 7:31, 5:21], atol=1e-6, rtol=0)
    torch.testing.assert_close(crops[1], image[1, :, 16:40, 5:21], atol=1e-6, rtol=0)
    background = torch.full_like(image, -7.0)
    pasted = roi.paste(crops, boxes, background)
    inside = torch.zeros(2, 1, 40, 30, dtype=torch.bool)
    inside[0, :, 7:31, 5:21] = True
    inside[1, :, 16:40, 5:21] = True
    torch.testing.assert_close(pasted[inside.expand_as(image)], image[inside.expand_as(image)],
                               atol=1e-5, rtol=0)
    assert torch.equal(pasted[~inside.expand_as(image)], background[~inside.expand_as(image)])


def test_crop_of_a_coarser_feature_map_lines_up_with_its_slice():
    """A level-1 feature (half the input size) cropped to the box's size at that level is the slice
    of the feature under the box: the per-axis spatial scale is right."""
    feature = torch.rand(1, 4, 20, 15)
    box = torch.tensor([[6.0, 8.0, 22.0, 32.0]])  # input pixels (image 40 x 30) -> (3, 4, 11, 16)
    torch.testing.assert_close(roi.crop(feature, box, (40, 30), (12, 8))[0], feature[0, :, 4:16, 3:11],
                               atol=1e-6, rtol=0)
    anisotropic = torch.rand(1, 2, 20, 30)  # rows halved, columns not: two different scales
    torch.testing.assert_close(roi.crop(anisotropic, box, (40, 30), (12, 16))[0],
                               anisotropic[0, :, 4:16, 6:22], atol=1e-6, rtol=0)


def test_shrinking_crop_averages_the_pixels_of_each_bin():
    image = torch.arange(16.0).view(1, 1, 4, 4)
    crop = roi.crop(image, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), (4, 4), (2, 2))
    assert crop.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]  # means of the 2x2 blocks


def test_crop_rows_give_each_crop_row_its_row_in_the_whole_image():
    x = torch.zeros(1, 1, 12, 4)
    whole = roi.crop_rows(torch.tensor([[0.0, 0.0, 4.0, 12.0]]), 12, (12, 4))
    torch.testing.assert_close(whole, _row_coordinate(x))  # same scale as the uncropped input
    half = roi.crop_rows(torch.tensor([[0.0, 6.0, 4.0, 12.0]]), 12, (6, 4))
    torch.testing.assert_close(half, _row_coordinate(x)[:, :, 6:])


# ------------------------------------------------------------------------------ the model
def test_forward_backward_shapes_in_training_and_eval():
    model = create("r2mfnet", **ROI).train()
    x, mask = torch.rand(2, 1, *INPUT), _spine_mask()
    out = model(x, target=mask)
    assert set(out) == {"logits", "coarse_logits", "boxes"}
    assert out["logits"].shape == out["coarse_logits"].shape == (2, 1, *INPUT)
    assert out["boxes"].shape == (2, 4) and out["boxes"].dtype == torch.float32
    outputs_loss({k: out[k] for k in ("logits", "coarse_logits")}, mask).backward()
    for name, net in (("coarse", model.coarse), ("fine", model.fine)):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters()), name
    assert any(p.grad.abs().sum() > 0 for p in model.fine.encoder[0].parameters())
    with torch.no_grad():
        assert model.eval()(x)["logits"].shape == (2, 1, *INPUT)


def test_training_boxes_come_from_the_ground_truth_and_eval_boxes_from_the_coarse_mask():
    model = create("r2mfnet", **ROI)
    mask = _spine_mask()
    coarse = torch.full((2, 1, 64, 32), -3.0)
    coarse[:, :, 10:20, 5:9] = 3.0  # coarse box (5, 10, 9, 20) -> input (10, 20, 18, 40)
    model.train()
    torch.manual_seed(1)
    train_boxes = model._boxes(coarse, INPUT, mask)
    torch.manual_seed(1)
    expected = roi.fit_boxes(roi.jitter_boxes(torch.tensor([[25.0, 20.0, 40.0, 100.0]] * 2), 0.1, (0.9, 1.2)),
                             INPUT, (64, 32), 0.1)
    assert torch.equal(train_boxes, expected)
    assert not torch.equal(train_boxes[0], train_boxes[1])  # jittered per image
    model.eval()
    eval_boxes = model._boxes(coarse, INPUT, mask)  # the target is ignored in eval mode
    # (10, 20, 18, 40): 8 x 20 -> margin 9.6 x 24 -> aspect 12 x 24 -> at least 32 x 64 around (14, 30)
    assert eval_boxes.tolist() == [[0, 0, 32, 64]] * 2
    coarse[:, :, 10:50, 5:9] = 3.0  # a longer spine: (10, 20, 18, 100) -> 9.6 x 96 -> 48 x 96
    assert model._boxes(coarse, INPUT, None).tolist() == [[0, 12, 48, 108]] * 2


def test_empty_coarse_mask_crops_the_whole_image_and_a_zero_correction_keeps_the_coarse_logits():
    model = create("r2mfnet", **ROI).eval()
    torch.nn.init.constant_(model.coarse.head.bias, -50.0)  # nothing above 0.5 anywhere
    torch.nn.init.zeros_(model.fine.head.weight)
    torch.nn.init.zeros_(model.fine.head.bias)
    with torch.no_grad():
        out = model(torch.rand(2, 1, *INPUT))
    assert out["boxes"].tolist() == [[0, 0, 64, 128]] * 2
    # coarse logits cropped to the whole image and pasted back = the upsampled coarse logits
    torch.testing.assert_close(out["logits"], out["coarse_logits"], atol=1e-4, rtol=1e-5)


def test_coarse_stage_does_not_run_the_fine_network():
    model = create("r2mfnet", **ROI).set_stage("coarse").train()
    calls = []
    model.fine.register_forward_hook(lambda *args: calls.append(1))
    out = model(torch.rand(1, 1, *INPUT), target=_spine_mask(1))
    assert not calls and set(out) == {"logits", "coarse_logits"}
    assert out["logits"] is out["coarse_logits"] and out["logits"].shape == (1, 1, *INPUT)
    model.set_stage("fine")
    model(torch.rand(1, 1, *INPUT), target=_spine_mask(1))
    assert calls


def test_vertebra_classes_box_from_the_union():
    model = create("r2mfnet", **ROI, num_classes=18, coarse_classes=1, fine_coords=None).train()
    labels = torch.zeros(2, *INPUT, dtype=torch.long)
    labels[0, 30:40, 20:30] = 3
    labels[0, 80:90, 30:40] = 11  # union box (20, 30, 40, 90)
    labels[1, 10:100, 10:50] = 1
    out = model(torch.rand(2, 1, *INPUT), target=labels)
    assert out["logits"].shape == (2, 18, *INPUT) and out["coarse_logits"].shape == (2, 1, *INPUT)
    torch.nn.functional.cross_entropy(out["logits"], labels).backward()
    torch.manual_seed(2)
    boxes = model._boxes(torch.zeros(2, 1, 64, 32), INPUT, labels)  # an empty coarse mask, ignored
    torch.manual_seed(2)
    union = torch.tensor([[20.0, 30.0, 40.0, 90.0], [10.0, 10.0, 50.0, 100.0]])
    assert torch.equal(boxes, roi.fit_boxes(roi.jitter_boxes(union, 0.1, (0.9, 1.2)), INPUT, (64, 32), 0.1))
    model18 = create("r2mfnet", **ROI, num_classes=18, coarse_classes=18).eval()
    coarse = torch.zeros(1, 18, 64, 32)
    coarse[:, 0] = 5.0
    coarse[:, 4, 10:50, 5:9] = 10.0  # 1 - p(background) > 0.5 only there
    assert model18._boxes(coarse, INPUT, None).tolist() == [[0, 12, 48, 108]]


def test_state_dict_round_trip_through_model_config_gives_identical_outputs():
    model = create("r2mfnet", **ROI, crop_margin=0.2, train_box_scale=[0.8, 1.1]).eval()
    config = json.loads(json.dumps(model.model_config))  # what a checkpoint stores
    rebuilt = create(**config)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.eval()
    assert rebuilt.model_config == model.model_config and rebuilt.crop_margin == 0.2
    x = torch.rand(1, 1, *INPUT)
    with torch.no_grad():
        a, b = model(x), rebuilt(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fine_crop_false_is_bit_identical_to_the_model_without_the_new_keys():
    torch.manual_seed(0)
    plain = create("r2mfnet", base_channels=4, depth=2)
    torch.manual_seed(0)
    off = create("r2mfnet", base_channels=4, depth=2, fine_crop=False, coarse_size=[8, 8],
                 crop_size=[3, 5], crop_margin=-1)  # ignored when off, not even checked
    assert off.model_config == plain.model_config and not off.uses_target and not plain.uses_target
    x = torch.rand(2, 1, 30, 18)  # not a multiple of 2**depth: padded and cropped as before
    plain.train(), off.train()
    a, b = plain(x), off(x, target=torch.ones(2, 1, 30, 18))
    assert set(a) == set(b) == {"logits", "coarse_logits"}
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("key,value", [
    ("coarse_size", [62, 32]), ("coarse_size", [64]), ("crop_size", "64x32"), ("crop_size", [0, 32]),
    ("crop_margin", -0.1), ("train_box_shift", 1.5), ("train_box_scale", [1.2, 0.9]),
    ("train_box_scale", [0, 1]), ("fine_crop", "yes"),
])
def test_bad_roi_options_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}"):
        create("r2mfnet", **{**ROI, key: value})


def test_eval_forward_traces_and_exports():
    model = create("r2mfnet", **ROI).eval()
    x = torch.rand(1, 1, *INPUT)
    exported = torch.export.export(model, (x,)).module()
    with torch.no_grad():
        eager, got = model(x), exported(x)
    for key in eager:
        torch.testing.assert_close(got[key], eager[key], atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- the trainer
@pytest.fixture(scope="module")
def spine_set(tmp_path_factory):
    from r2mfnet.data.dataset import SegmentationDataset
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path_factory.mktemp("syn") / "d", num_cases=2, seed=5,
                                image_height=256, image_width=128, num_workers=0)
    return SegmentationDataset(load_manifest(manifest), image_size=INPUT)


def test_trainer_passes_the_mask_in_training_only_and_the_loss_falls(spine_set, tmp_path):
    from r2mfnet.training.config import TrainerConfig
    from r2mfnet.training.trainer import Trainer, _uses_target

    torch.manual_seed(0)
    model = create("r2mfnet", **ROI)
    assert _uses_target(model) and not _uses_target(create("r2mfnet", base_channels=4, depth=2))
    seen = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((module.training, "target" in kwargs)), with_kwargs=True)
    cfg = TrainerConfig(coarse_epochs=2, fine_epochs=4, device="cpu", progress=False, warmup_steps=1,
                        lr=1e-2, log_images=0)
    trainer = Trainer(model, spine_set, spine_set, cfg, tmp_path / "run", batch_size=3,
                      preprocess={"input_size": list(INPUT), "clahe": False})
    history = trainer.fit().history
    assert {s for s in seen} == {(True, True), (False, False)}  # mask in training, never in validation
    fine = [h["train_loss"] for h in history if h["stage"] == "fine"]
    assert len(fine) == 4 and all(np.isfinite(fine)) and fine[-1] < fine[0], fine
    assert all(0.0 <= h["val_dice"] <= 1.0 for h in history)
