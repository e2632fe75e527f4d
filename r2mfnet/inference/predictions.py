"""What every predictor derives from its model's probabilities: masks, label maps, the coarse mask.

The PyTorch :class:`~r2mfnet.inference.predictor.Predictor` and the ONNX Runtime
:class:`~r2mfnet.inference.onnx_predictor.OnnxPredictor` differ only in how they run the model
(:meth:`model_probabilities`); everything after it (back to each image's size, the threshold, the
clean-up, the vertebra classes) is written once here, so that the two backends cannot drift
apart. NumPy only: the ONNX path must not import torch.

Rules (:mod:`r2mfnet.inference.postprocess`): foreground = ``1 - p(background) > threshold`` (a
sigmoid above it for one channel) after the probability maps are mapped back to the original
size (linear); with ``postprocess`` the anatomy-aware clean-up follows, its spine column from the
coarse stage's mask when the model has one. A label map's foreground gets the same clean-up, so
its union matches the binary mask, and each foreground pixel takes the most probable vertebra
class from the back-mapped probabilities (a filled hole takes its most probable class too).

With flip TTA, :meth:`MaskPredictions.predict_with_halves` gives the prediction and the masks of
its two passes (the image; its mirror image, the mask mirrored back) from the same two model
runs, so the review page's flip-TTA check (:mod:`r2mfnet.measure.review_flags`) costs no more passes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from r2mfnet.data.preprocess import LetterboxTransform
from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import apply_cleanup, foreground_probability, half_key, labels_from_channels

Probabilities = Iterator[tuple[dict[str, np.ndarray], LetterboxTransform]]


def labels_from_probabilities(prob: np.ndarray, transform: LetterboxTransform, threshold: float = 0.5,
                              foreground: np.ndarray | None = None) -> np.ndarray:
    """Model-size class probabilities ``[C, H, W]`` -> uint8 label map at the original size of
    ``transform``: foreground where ``1 - p(background) > threshold`` (or the given original-size
    ``foreground`` mask), there the most probable vertebra class
    (:func:`~r2mfnet.inference.postprocess.labels_from_channels`)."""
    channels = (transform.invert(np.asarray(prob[k], dtype=np.float32)) for k in range(prob.shape[0]))
    return labels_from_channels(channels, threshold, foreground)


class MaskPredictions:
    """Masks and label maps from :meth:`model_probabilities`, which a backend implements.

    A backend sets ``threshold``, ``postprocess`` and ``cleanup`` and yields, per image, its
    model-size probabilities ``{"prob": [C, H, W]}`` (and ``"coarse_prob"`` when asked and the
    model has a coarse stage), flip TTA included, with the letterbox transform back to its size;
    with ``halves`` and flip TTA also each pass's own probabilities under
    :func:`~r2mfnet.inference.postprocess.half_key` (the mirrored pass's in the mirror image's frame).
    """

    threshold: float
    postprocess: bool
    cleanup: Any

    def model_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4,
                            coarse: bool = False, halves: bool = False) -> Probabilities:  # pragma: no cover - abstract
        raise NotImplementedError

    def coarse_mask(self, probs: Mapping[str, np.ndarray], transform: LetterboxTransform) -> np.ndarray | None:
        """The coarse stage's mask at the original size (the clean-up's column), or None."""
        if "coarse_prob" not in probs:
            return None
        return transform.invert(foreground_probability(probs["coarse_prob"], axis=0)[0]) > self.threshold

    def predict_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """Spine probability maps, each the size of its input image (never cleaned up)."""
        return [transform.invert(foreground_probability(probs["prob"], axis=0)[0])
                for probs, transform in self.model_probabilities(images, batch_size)]

    def predict_probability(self, image: np.ndarray) -> np.ndarray:
        return self.predict_probabilities([image])[0]

    def predict_masks(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """Binary spine masks at the inputs' sizes: probability > threshold, then the clean-up
        when ``postprocess`` (its column from the coarse mask when the model has one)."""
        return [self._mask(probs, transform)
                for probs, transform in self.model_probabilities(images, batch_size, coarse=self.postprocess)]

    def _mask(self, probs: Mapping[str, np.ndarray], transform: LetterboxTransform) -> np.ndarray:
        """One image's mask from its probabilities: the rule of :meth:`predict_masks`, written once
        so that the TTA mask and its halves (:meth:`predict_with_halves`) follow it too."""
        mask = transform.invert(foreground_probability(probs["prob"], axis=0)[0]) > self.threshold
        ref = self.coarse_mask(probs, transform) if self.postprocess else None
        return apply_cleanup(mask, self.postprocess, self.cleanup, ref)

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Binary spine mask at the input's size (see :meth:`predict_masks`)."""
        return self.predict_masks([image])[0]

    def predict_with_halves(self, image: np.ndarray, labels: bool = False
                            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One flip-TTA prediction and its two halves, from the same two model passes:
        ``(prediction, (plain, mirrored))``.

        ``prediction`` is :meth:`predict_mask`'s mask (with ``labels``, :meth:`predict_label_maps`'
        label map), the same arrays. ``plain`` and ``mirrored`` are the masks of each pass alone,
        thresholded and cleaned like :meth:`predict_mask`: the image's, and its mirror image's
        mirrored back. Their disagreement flags an unstable prediction on the review page
        (:mod:`r2mfnet.measure.review_flags`). The mirrored pass sees the mirrored letterboxed
        image, as TTA does; with an odd padding (left and right differing by a pixel) that is one
        model pixel off a mirror image letterboxed on its own, and its crop is taken where the
        content sits. Needs ``tta_flip``: without it there is one pass and no halves.
        """
        if not getattr(self, "tta_flip", False):
            raise ConfigError("the flip-TTA halves need tta_flip=true")
        ((probs, transform),) = self.model_probabilities([image], 1, coarse=self.postprocess, halves=True)
        prediction = self._label_map(probs, transform) if labels else self._mask(probs, transform)
        plain = self._mask(_half(probs, "plain"), transform)
        mirrored_frame = replace(transform, pad_left=transform.pad_right)  # the content, mirrored
        mirrored = self._mask(_half(probs, "mirrored"), mirrored_frame)[:, ::-1]
        return prediction, (plain, np.ascontiguousarray(mirrored))

    def predict_label_maps(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """uint8 vertebra label maps (0 background, 1..17 = T1..L5) of an 18-class model, each the
        size of its input image (module docstring for the rule)."""
        return [self._label_map(probs, transform)
                for probs, transform in self.model_probabilities(images, batch_size, coarse=self.postprocess)]

    def _label_map(self, probs: Mapping[str, np.ndarray], transform: LetterboxTransform) -> np.ndarray:
        """One image's label map from its probabilities: the rule of :meth:`predict_label_maps`."""
        prob = probs["prob"]
        if prob.shape[0] < 2:
            raise ConfigError(
                "this model predicts a binary mask (num_classes=1); vertebra labels need a model "
                "trained with data.labels=vertebrae model.num_classes=18")
        foreground = None
        if self.postprocess:
            raw = 1.0 - transform.invert(np.asarray(prob[0], dtype=np.float32)) > self.threshold
            foreground = apply_cleanup(raw, True, self.cleanup, self.coarse_mask(probs, transform))
        return labels_from_probabilities(prob, transform, self.threshold, foreground)


def _half(probs: Mapping[str, np.ndarray], half: str) -> dict[str, np.ndarray]:
    """One TTA pass's probabilities under their usual keys (``"prob"``, ``"coarse_prob"``)."""
    prefix = half_key(half, "")
    return {k[len(prefix):]: v for k, v in probs.items() if k.startswith(prefix)}
