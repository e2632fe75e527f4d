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
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from r2mfnet.data.preprocess import LetterboxTransform
from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import apply_cleanup, foreground_probability, labels_from_channels

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
    model has a coarse stage), flip TTA included, with the letterbox transform back to its size.
    """

    threshold: float
    postprocess: bool
    cleanup: Any

    def model_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4,
                            coarse: bool = False) -> Probabilities:  # pragma: no cover - abstract
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
        out: list[np.ndarray] = []
        for probs, transform in self.model_probabilities(images, batch_size, coarse=self.postprocess):
            mask = transform.invert(foreground_probability(probs["prob"], axis=0)[0]) > self.threshold
            ref = self.coarse_mask(probs, transform) if self.postprocess else None
            out.append(apply_cleanup(mask, self.postprocess, self.cleanup, ref))
        return out

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Binary spine mask at the input's size (see :meth:`predict_masks`)."""
        return self.predict_masks([image])[0]

    def predict_mask_halves(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two halves of flip TTA as masks: ``(plain, mirrored)``, each predicted without TTA
        (the image; its mirror image, the mask mirrored back) and thresholded and cleaned like
        :meth:`predict_mask`. Their disagreement flags an unstable prediction on the review page
        (:mod:`r2mfnet.measure.review_flags`). Each is letterboxed on its own, so with an odd
        padding the mirrored half sits one model pixel off the mirrored tensor flip TTA uses."""
        saved = getattr(self, "tta_flip", False)
        self.tta_flip = False
        try:
            plain = self.predict_mask(image)
            mirrored = self.predict_mask(np.ascontiguousarray(np.asarray(image)[:, ::-1]))[:, ::-1]
        finally:
            self.tta_flip = saved
        return plain, np.ascontiguousarray(mirrored)

    def predict_label_maps(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """uint8 vertebra label maps (0 background, 1..17 = T1..L5) of an 18-class model, each the
        size of its input image (module docstring for the rule)."""
        out: list[np.ndarray] = []
        for probs, transform in self.model_probabilities(images, batch_size, coarse=self.postprocess):
            prob = probs["prob"]
            if prob.shape[0] < 2:
                raise ConfigError(
                    "this model predicts a binary mask (num_classes=1); vertebra labels need a model "
                    "trained with data.labels=vertebrae model.num_classes=18")
            foreground = None
            if self.postprocess:
                raw = 1.0 - transform.invert(np.asarray(prob[0], dtype=np.float32)) > self.threshold
                foreground = apply_cleanup(raw, True, self.cleanup, self.coarse_mask(probs, transform))
            out.append(labels_from_probabilities(prob, transform, self.threshold, foreground))
        return out
