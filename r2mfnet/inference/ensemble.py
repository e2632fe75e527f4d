"""Several trained checkpoints as one predictor: their probability maps averaged (an ensemble).

Why: the Cobb-angle error of predicted masks is dominated by noise in the outlines of the
predicted vertebrae. Flip TTA averages one model's two passes and already cuts it; models trained
independently (other seeds, other folds, as nnU-Net ensembles its folds) make partly independent
outline errors, so averaging their probabilities smooths what one model's passes share.

What is averaged: each member's **model-size class probabilities** (after its own flip TTA, run
with the ensemble's ``tta_flip``), key by key and with **equal weights**, *before* they are mapped
back to the image's size. Everything after that (back-mapping, threshold, clean-up, label maps,
the flip-TTA halves of :meth:`~r2mfnet.inference.predictions.MaskPredictions.predict_with_halves`)
is :class:`~r2mfnet.inference.predictions.MaskPredictions`' unchanged, as for one model. A key
only some members yield is dropped: ``coarse_prob`` needs every member to have a coarse stage
(otherwise the clean-up finds its spine column from the mask, as for a model without one), and
the halves' keys exist only with flip TTA.

Members keep their own preprocessing (CLAHE, intensity normalisation, as each was trained) but
must share the **input size** (one letterbox transform, so that their maps line up pixel for
pixel) and the **number of classes**; :func:`check_members` refuses otherwise when the ensemble
is built, before any image is read. The first member is the primary (``checkpoint=``): its model
is what a command reads about "the model" (class count, name) and its letterbox the input size.
Prediction time grows with the number of members.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from r2mfnet.data.preprocess import LetterboxTransform
from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import CleanupParams, cleanup_params
from r2mfnet.inference.predictions import MaskPredictions
from r2mfnet.inference.predictor import Predictor


def num_classes(model: Any) -> int:
    """The output classes a model was built with (``model_config``; 1 when it records none)."""
    return int(dict(getattr(model, "model_config", None) or {}).get("num_classes", 1))


def check_members(members: Sequence[Predictor], names: Sequence[str]) -> None:
    """One-line :class:`ConfigError` naming the first member whose input size or class count
    differs from the primary's (``members[0]``): their maps could not be averaged pixel by pixel
    and class by class."""
    primary, first = members[0], names[0]
    size = (primary.letterbox.height, primary.letterbox.width)
    classes = num_classes(primary.model)
    for member, name in zip(members[1:], names[1:]):
        other = (member.letterbox.height, member.letterbox.width)
        if other != size:
            raise ConfigError(f"ensemble member '{name}': input size {other[0]}x{other[1]} differs from "
                              f"checkpoint '{first}' ({size[0]}x{size[1]}); the members' maps must line up")
        if num_classes(member.model) != classes:
            raise ConfigError(f"ensemble member '{name}': {num_classes(member.model)} output classes, "
                              f"checkpoint '{first}' has {classes}; the members must predict the same classes")


def average_probabilities(maps: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Equal-weight mean, key by key, of the keys every member's map has with the same shape
    (float32). A coarse stage's map can differ in channels (1 against 18 classes) where the
    outputs agree: it is then left out, as for members without one."""
    keys = [k for k in maps[0] if all(k in m and np.shape(m[k]) == np.shape(maps[0][k]) for m in maps[1:])]
    out: dict[str, np.ndarray] = {}
    for key in keys:
        total = np.array(maps[0][key], dtype=np.float32)  # a copy: the members' arrays stay as they are
        for m in maps[1:]:
            total += np.asarray(m[key], dtype=np.float32)
        out[key] = total / np.float32(len(maps))
    return out


class EnsemblePredictor(MaskPredictions):
    """Masks, probabilities and label maps of the mean of several :class:`Predictor`\\ s'
    probabilities (module docstring). ``threshold``, ``tta_flip``, ``postprocess`` and ``cleanup``
    are the ensemble's own, applied once to the mean; the members' settings of these are unused."""

    def __init__(self, members: Sequence[Predictor], names: Sequence[str | Path], threshold: float = 0.5,
                 tta_flip: bool = False, postprocess: bool = True,
                 cleanup: CleanupParams | Mapping[str, Any] | None = None) -> None:
        if not members or len(members) != len(names):
            raise ValueError("an ensemble needs at least one member and one name per member")
        self.names = [str(n) for n in names]
        check_members(members, self.names)
        self.members = list(members)
        self.threshold = threshold
        self.tta_flip = bool(tta_flip)
        self.postprocess = bool(postprocess)
        self.cleanup = cleanup_params(cleanup)
        primary = self.members[0]
        self.model = primary.model  # what commands read about "the model" (model_config)
        self.letterbox = primary.letterbox  # the shared input size
        self.device = primary.device

    @classmethod
    def from_checkpoints(cls, paths: Sequence[str | Path], device: str | None = None, threshold: float = 0.5,
                         tta_flip: bool = False, postprocess: bool = True,
                         cleanup: CleanupParams | Mapping[str, Any] | None = None) -> "EnsemblePredictor":
        """The ensemble of trainer checkpoints ``paths`` (the first is the primary), each read by
        the safe loader :func:`~r2mfnet.checkpoint.load_trained` (never ``torch.load`` here)."""
        from r2mfnet.checkpoint import load_trained

        members = [Predictor.from_loaded(load_trained(p), device=device, tta_flip=tta_flip, threshold=threshold,
                                         postprocess=postprocess, cleanup=cleanup) for p in paths]
        return cls(members, list(paths), threshold=threshold, tta_flip=tta_flip, postprocess=postprocess,
                   cleanup=cleanup)

    def model_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4, coarse: bool = False,
                            halves: bool = False) -> Iterator[tuple[dict[str, np.ndarray], LetterboxTransform]]:
        """Per image, the members' model-size probabilities averaged (:func:`average_probabilities`),
        each member run on the same batch with this ensemble's ``tta_flip``; the transform is the
        primary's (the same for every member: one input size). One batch per member in memory."""
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            runs = [list(m.model_probabilities(chunk, len(chunk), coarse, halves, tta_flip=self.tta_flip))
                    for m in self.members]
            for per_member in zip(*runs):
                yield average_probabilities([probs for probs, _ in per_member]), per_member[0][1]


__all__ = ["EnsemblePredictor", "average_probabilities", "check_members", "num_classes"]
