"""Validation Dice: binary outputs, vertebra classes (per-class mean, union beside it), and the
predictor's foreground rule, against hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch

from r2mfnet.training.losses import DiceCELoss, binary_target, soft_dice_loss
from r2mfnet.training.validation import dice_per_image, predicted_classes


def _logits_from_probs(probs: list[list[float]], h: int = 1) -> torch.Tensor:
    """``[1, C, h, W]`` logits whose softmax is ``probs`` (one column of W pixels per entry)."""
    p = torch.tensor(probs, dtype=torch.float32).T  # [C, W]
    return torch.log(p)[None, :, None, :].expand(1, -1, h, -1).clone()


def test_foreground_is_one_minus_background_not_argmax():
    # background 0.4, vertebra mass 0.6 split over three levels: argmax says background,
    # the predictor's rule (1 - p_bg > 0.5) says vertebra, the most probable one (class 2)
    logits = _logits_from_probs([[0.4, 0.15, 0.25, 0.2]])
    assert predicted_classes(logits).tolist() == [[[2]]]
    logits = _logits_from_probs([[0.6, 0.1, 0.2, 0.1]])
    assert predicted_classes(logits).tolist() == [[[0]]]


def test_class_dice_is_the_mean_over_levels_present():
    # four pixels; truth [1, 1, 2, 0]; prediction [1, 2, 2, 0]
    # class 1: pred {0}, gt {0,1} -> 2*1/3; class 2: pred {1,2}, gt {2} -> 2*1/3; class 3 absent
    sure = {0: [0.9, 0.05, 0.05], 1: [0.05, 0.9, 0.05], 2: [0.05, 0.05, 0.9]}
    probs = [sure[c] + [0.0001] for c in (1, 2, 2, 0)]
    probs = [[v / sum(p) for v in p] for p in probs]
    logits = _logits_from_probs(probs)
    target = torch.tensor([[[1, 1, 2, 0]]])
    scores = dice_per_image(logits, target)
    assert scores["dice"].item() == pytest.approx(2 / 3)
    assert scores["dice_union"].item() == pytest.approx(1.0)  # same three foreground pixels


def test_binary_dice_and_empty_cases():
    logits = torch.tensor([[[[5.0, 5.0, -5.0, -5.0]]], [[[-5.0, -5.0, -5.0, -5.0]]]])
    mask = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0, 0.0]]]])
    scores = dice_per_image(logits, mask)
    assert scores["dice"].tolist() == pytest.approx([2 / 3, 1.0])  # empty vs empty scores 1
    assert "dice_union" not in scores
    # a binary output scored against vertebra classes uses their union
    labels = torch.tensor([[[3, 0, 0, 0]], [[0, 0, 0, 0]]])
    assert dice_per_image(logits, labels)["dice"].tolist() == pytest.approx([2 / 3, 1.0])
    with pytest.raises(ValueError, match="class targets"):
        dice_per_image(torch.zeros(1, 3, 1, 4), mask[:1])


def test_binary_output_trains_on_the_union_of_labels():
    labels = torch.tensor([[[0, 4, 17], [2, 0, 0]]])
    assert binary_target(labels).tolist() == [[[[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]]
    logits = torch.randn(1, 1, 2, 3)
    assert soft_dice_loss(logits, labels).item() == pytest.approx(
        soft_dice_loss(logits, binary_target(labels)).item())
    # the cascade's mixed outputs (binary coarse, 18-class fine) take one target
    loss = DiceCELoss()({"logits": torch.randn(1, 18, 2, 3), "coarse_logits": logits}, labels)
    assert math.isfinite(loss.item())
