"""Vertebra label maps (0 background, 1..17 = T1..L5) from an 18-class model, at original size.

Works with any :class:`~r2mfnet.inference.predictor.Predictor` whose model has
``num_classes=18`` (trained with ``data.labels=vertebrae``); it reuses the predictor's
preprocessing, device, flip TTA and threshold, so that

* **foreground** = ``1 - p(background) > threshold`` after the probability maps are mapped back
  to the original size (linear), exactly the predictor's ``predict_mask``; and
* each foreground pixel takes the **most probable vertebra class** (1..17), also from the
  back-mapped probabilities (not a nearest-neighbour blow-up of a model-size argmax).

With ``tta_flip`` the softmax of the mirrored image is mirrored back and averaged: a flip moves
vertebrae but does not change their names. Raw label maps can have stray pieces and gaps;
:func:`r2mfnet.measure.vertebra_labels.clean_labels` applies the anatomical rules.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from r2mfnet.errors import ConfigError

__all__ = ["label_probabilities", "labels_from_probabilities", "predict_label_maps"]


@torch.inference_mode()
def label_probabilities(predictor, batch: torch.Tensor) -> torch.Tensor:
    """Softmax ``[B, C, H, W]`` (model size) of a preprocessed batch, flip TTA included."""
    model = predictor.model
    with torch.autocast(predictor.device.type, enabled=predictor.amp):
        logits = model(batch)["logits"].float()
    if logits.shape[1] < 2:
        raise ConfigError(
            "this checkpoint predicts a binary mask (num_classes=1); vertebra labels need a model "
            "trained with data.labels=vertebrae model.num_classes=18"
        )
    prob = torch.softmax(logits, 1)
    if predictor.tta_flip:
        with torch.autocast(predictor.device.type, enabled=predictor.amp):
            flipped = model(torch.flip(batch, dims=[3]))["logits"].float()
        prob = 0.5 * (prob + torch.flip(torch.softmax(flipped, 1), dims=[3]))
    return prob


def predict_label_maps(predictor, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
    """uint8 label maps, each the size of its input image (module docstring for the rule)."""
    out: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        prepared = [predictor.preprocess(img) for img in images[start : start + batch_size]]
        batch = torch.from_numpy(np.stack([p[0] for p in prepared])[:, None]).to(predictor.device)
        probs = label_probabilities(predictor, batch).cpu().numpy()
        for prob, (_, transform) in zip(probs, prepared):
            out.append(labels_from_probabilities(prob, transform, predictor.threshold))
    return out


def labels_from_probabilities(prob: np.ndarray, transform, threshold: float = 0.5) -> np.ndarray:
    """Model-size class probabilities ``[C, H, W]`` -> uint8 label map at the original size of
    ``transform`` (a :class:`~r2mfnet.data.preprocess.LetterboxTransform`): foreground where
    ``1 - p(background) > threshold``, there the most probable vertebra class."""
    foreground = 1.0 - transform.invert(np.asarray(prob[0], dtype=np.float32)) > threshold
    labels = np.zeros(foreground.shape, np.uint8)
    best = np.full(foreground.shape, -1.0, np.float32)
    for k in range(1, prob.shape[0]):
        pk = transform.invert(np.asarray(prob[k], dtype=np.float32))
        take = pk > best
        best[take] = pk[take]
        labels[take] = k
    labels[~foreground] = 0
    return labels
