"""Inference at each image's original resolution.

The predictor applies exactly the preprocessing a checkpoint was trained with (intensity
normalisation, optional CLAHE, letterbox to the model's input size), runs the model without
autograd, and maps the probability back through the letterbox's inverse, so that masks and
metrics always live on the original pixel grid. Probabilities, flip TTA, the threshold and the
anatomy-aware clean-up all come from :mod:`r2mfnet.inference.postprocess`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from r2mfnet.data.preprocess import Letterbox, LetterboxTransform, clahe, normalize_intensity
from r2mfnet.inference.postprocess import CleanupParams, cleanup_params, flip_tta
from r2mfnet.inference.predictions import MaskPredictions

if TYPE_CHECKING:
    from r2mfnet.checkpoint import LoadedCheckpoint


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Predictor(MaskPredictions):
    """Turns original-size images into original-size spine probabilities and masks.

    ``tta_flip`` averages the prediction of the image and of its horizontal mirror (un-mirrored):
    the spine is close to left-right symmetric in appearance, so this cheaply reduces variance.
    ``postprocess`` applies :func:`~r2mfnet.inference.postprocess.clean_mask` with ``cleanup``
    (a :class:`~r2mfnet.inference.postprocess.CleanupParams` or a mapping of its fields) to every
    mask and label map; probability maps are never cleaned.
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: Sequence[int],
        use_clahe: bool = False,
        device: str | None = None,
        tta_flip: bool = False,
        threshold: float = 0.5,
        amp: bool | str = False,
        channels_last: bool | None = None,
        postprocess: bool = True,
        cleanup: CleanupParams | Mapping[str, Any] | None = None,
    ) -> None:
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        # channels_last (NHWC): measured 1.3-1.5x faster inference on CPU (docs/performance.md),
        # same masks up to float rounding; on CUDA only when asked (not measured here)
        self.channels_last = self.device.type == "cpu" if channels_last is None else bool(channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.letterbox = Letterbox(int(input_size[0]), int(input_size[1]))
        self.use_clahe = use_clahe
        self.tta_flip = tta_flip
        self.threshold = threshold
        self.postprocess = bool(postprocess)
        self.cleanup = cleanup_params(cleanup)
        # amp: True = fp16/bf16 autocast on CUDA only; "bf16" = bf16 autocast on any device (on a
        # CPU without native bf16 it is much slower, see docs/performance.md)
        self.amp_dtype: torch.dtype | None = None
        if amp == "bf16":
            self.amp_dtype = torch.bfloat16
        elif amp is True and self.device.type == "cuda":
            self.amp_dtype = torch.float16  # torch.autocast("cuda")'s default, as before
        elif amp not in (False, None, True, "off"):
            raise ValueError(f"amp must be False, True (CUDA autocast) or 'bf16', got {amp!r}")
        self.amp = self.amp_dtype is not None

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> "Predictor":
        """Build from a trainer checkpoint: model and preprocessing come from the file."""
        from r2mfnet.checkpoint import load_trained

        return cls.from_loaded(load_trained(path), **kwargs)

    @classmethod
    def from_loaded(cls, loaded: "LoadedCheckpoint", **kwargs: Any) -> "Predictor":
        """Build from a :class:`~r2mfnet.checkpoint.LoadedCheckpoint` (model and preprocessing)."""
        return cls(loaded.model, input_size=loaded.input_size, use_clahe=loaded.use_clahe, **kwargs)

    def preprocess(self, image: np.ndarray):
        """Raw image (any range, original size) -> model-size float32 array and its transform."""
        img01 = normalize_intensity(image)
        if self.use_clahe:
            img01 = clahe(img01)
        transform = self.letterbox.fit(img01.shape[:2])
        return transform.apply_image(img01).astype(np.float32), transform

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def run_model(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's output dict in float32, with this predictor's channels_last and autocast."""
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return {k: v.float() for k, v in self.model(batch).items()}

    def model_probabilities(
        self, images: Sequence[np.ndarray], batch_size: int = 4, coarse: bool = False, halves: bool = False,
        tta_flip: bool | None = None,
    ) -> Iterator[tuple[dict[str, np.ndarray], LetterboxTransform]]:
        """Per image, model-size class probabilities ``{"prob": [C, H, W]}`` (and ``"coarse_prob"``
        when ``coarse`` and the model has a coarse stage), flip TTA included, with the letterbox
        transform that maps them back to the image's size. With ``halves`` and flip TTA, also each
        pass's own probabilities (:func:`~r2mfnet.inference.postprocess.flip_tta`). ``tta_flip``
        (default: this predictor's) lets an ensemble (:mod:`r2mfnet.inference.ensemble`) run its
        members with its own setting. A generator: one batch in memory."""
        flip = self.tta_flip if tta_flip is None else bool(tta_flip)
        for start in range(0, len(images), batch_size):
            prepared = [self.preprocess(img) for img in images[start : start + batch_size]]
            batch = torch.from_numpy(np.stack([p[0] for p in prepared])[:, None]).to(self.device)
            with torch.inference_mode():
                tta = flip_tta(self.run_model, batch, flip, coarse, halves)
                probs = {k: v.cpu().numpy() for k, v in tta.items()}
            for i, (_, transform) in enumerate(prepared):
                yield {k: v[i] for k, v in probs.items()}, transform
