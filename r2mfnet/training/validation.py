"""Per-image validation Dice at the model's input size, for binary and vertebra-level outputs.

The trainer keeps the best checkpoint of each stage by the mean of :func:`dice_per_image`, so
the score must measure what the stage is for:

* **binary** output (one channel): Dice of ``sigmoid > 0.5`` against the mask (or against the
  union of the vertebra labels, for R2MF-Net's binary coarse stage in a vertebra-level run);
* **vertebra classes** (several channels): the mean over vertebra classes of the per-class Dice
  (classes absent from both prediction and ground truth are left out). A union Dice would
  keep the checkpoint that finds the spine best even if it cannot tell T5 from T9. The
  union Dice is reported beside it as ``dice_union``.

Foreground follows the predictor's rule (``1 - p(background) > 0.5``, then the most probable
vertebra class), so validation scores what inference will output; an argmax over all classes
would call a pixel background whenever the vertebra probability is split among neighbours. The
rule lives in :mod:`r2mfnet.inference.postprocess`. Validation scores it raw, without the
anatomy-aware clean-up: at the model's input size, cheap, and unchanged by ``eval.postprocess``.

:func:`vertebra_f1_per_image` adds the separated-vertebra score of docs/metrics.md on the same
foreground, so that a training curve shows whether the model learns to keep neighbours apart
(Dice barely moves when two vertebrae merge). It is reported, not used to pick checkpoints.
"""
from __future__ import annotations

import torch
from torch import Tensor

from r2mfnet.evaluation.vertebra_f1 import vertebra_f1
from r2mfnet.inference.postprocess import classes_from_logits, mask_from_logits

__all__ = ["dice_per_image", "predicted_classes", "vertebra_f1_per_image"]


def _dice(pred: Tensor, gt: Tensor) -> Tensor:
    """Dice per image of two bool ``[B, ...]`` tensors; 1 where both are empty."""
    inter = (pred & gt).flatten(1).sum(1).float()
    total = pred.flatten(1).sum(1).float() + gt.flatten(1).sum(1).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


def predicted_classes(logits: Tensor) -> Tensor:
    """``[B, C, H, W]`` logits (C > 1) -> ``[B, H, W]`` class indices by the predictor's rule."""
    return classes_from_logits(logits, 0.5)


def dice_per_image(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """``{"dice": [B]}`` (and ``"dice_union"`` for several classes); see the module docstring.

    ``target`` is a ``[B, 1, H, W]`` binary mask or ``[B, H, W]`` class indices.
    """
    gt_union = target > 0.5 if target.ndim == 4 else (target > 0).unsqueeze(1)
    if logits.shape[1] == 1:
        return {"dice": _dice(mask_from_logits(logits, 0.5), gt_union)}
    if target.ndim != 3:
        raise ValueError(f"a {logits.shape[1]}-class output needs [B, H, W] class targets, got {tuple(target.shape)}")
    pred = predicted_classes(logits)
    per_class = []
    present = []
    for k in range(1, logits.shape[1]):
        p, g = pred == k, target == k
        per_class.append(_dice(p, g))
        present.append((p | g).flatten(1).any(1))
    scores, seen = torch.stack(per_class, 1), torch.stack(present, 1).float()
    n = seen.sum(1)
    mean = torch.where(n > 0, (scores * seen).sum(1) / n.clamp_min(1), torch.ones_like(n))
    return {"dice": mean, "dice_union": _dice((pred > 0).unsqueeze(1), gt_union)}


def vertebra_f1_per_image(logits: Tensor, target: Tensor) -> list[float]:
    """Vertebra F1 (:func:`r2mfnet.evaluation.vertebra_f1.vertebra_f1`) of each image's predicted
    foreground against its ground-truth foreground, at the input size, without clean-up."""
    gt = (target > 0.5 if target.ndim == 4 else (target > 0).unsqueeze(1))[:, 0]
    pred = mask_from_logits(logits, 0.5)[:, 0] if logits.shape[1] == 1 else predicted_classes(logits) > 0
    return [vertebra_f1(p, g) for p, g in zip(pred.cpu().numpy(), gt.cpu().numpy())]
