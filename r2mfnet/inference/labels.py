"""Vertebra label maps (0 background, 1..17 = T1..L5) from an 18-class model, at original size.

Works with any :class:`~r2mfnet.inference.predictor.Predictor` whose model has
``num_classes=18`` (trained with ``data.labels=vertebrae``); it reuses the predictor's
preprocessing, device, flip TTA and threshold, so that

* **foreground** = ``1 - p(background) > threshold`` after the probability maps are mapped back
  to the original size (linear), the predictor's ``predict_mask`` rule; and
* each foreground pixel takes the **most probable vertebra class** (1..17), also from the
  back-mapped probabilities (not a nearest-neighbour blow-up of a model-size argmax).

Probabilities, flip TTA (with the predictor's ``amp`` and ``channels_last``) and the rule come from
:mod:`r2mfnet.inference.postprocess`. With ``predictor.postprocess`` the foreground gets the same clean-up
as :meth:`~r2mfnet.inference.predictor.Predictor.predict_mask` (same parameters, same coarse
column), so the label map's union matches the binary mask; a filled hole takes its most probable
vertebra class.
Raw label maps can still have stray pieces of one level.
:func:`r2mfnet.measure.vertebra_labels.clean_labels` applies the rules per level.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import apply_cleanup, flip_tta, labels_from_channels

__all__ = ["label_probabilities", "labels_from_probabilities", "predict_label_maps"]


def _require_classes(n_channels: int) -> None:
    if n_channels < 2:
        raise ConfigError(
            "this checkpoint predicts a binary mask (num_classes=1); vertebra labels need a model "
            "trained with data.labels=vertebrae model.num_classes=18"
        )


@torch.inference_mode()
def label_probabilities(predictor, batch: torch.Tensor) -> torch.Tensor:
    """Softmax ``[B, C, H, W]`` (model size) of a preprocessed batch, flip TTA included."""
    prob = flip_tta(predictor.run_model, batch, predictor.tta_flip, coarse=False)["prob"]
    _require_classes(prob.shape[1])
    return prob


def predict_label_maps(predictor, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
    """uint8 label maps, each the size of its input image (module docstring for the rule)."""
    out: list[np.ndarray] = []
    for probs, transform in predictor.model_probabilities(images, batch_size, coarse=predictor.postprocess):
        prob = probs["prob"]
        _require_classes(prob.shape[0])
        foreground = None
        if predictor.postprocess:
            background = transform.invert(np.asarray(prob[0], dtype=np.float32))
            raw = 1.0 - background > predictor.threshold
            foreground = apply_cleanup(raw, True, predictor.cleanup, predictor.coarse_mask(probs, transform))
        out.append(labels_from_probabilities(prob, transform, predictor.threshold, foreground))
    return out


def labels_from_probabilities(prob: np.ndarray, transform, threshold: float = 0.5,
                              foreground: np.ndarray | None = None) -> np.ndarray:
    """Model-size class probabilities ``[C, H, W]`` -> uint8 label map at the original size of
    ``transform`` (a :class:`~r2mfnet.data.preprocess.LetterboxTransform`): foreground where
    ``1 - p(background) > threshold`` (or the given original-size ``foreground`` mask), there the
    most probable vertebra class (:func:`~r2mfnet.inference.postprocess.labels_from_channels`)."""
    channels = (transform.invert(np.asarray(prob[k], dtype=np.float32)) for k in range(prob.shape[0]))
    return labels_from_channels(channels, threshold, foreground)
