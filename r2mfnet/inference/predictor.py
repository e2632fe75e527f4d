"""Inference at each image's original resolution.

The predictor applies exactly the preprocessing a checkpoint was trained with (intensity
normalisation, optional CLAHE, letterbox to the model's input size), runs the model without
autograd, and maps the probability back through the letterbox's inverse, so that masks and
metrics always live on the original pixel grid.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from r2mfnet.data.preprocess import Letterbox, clahe, normalize_intensity


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Predictor:
    """Turns original-size images into original-size spine probabilities and masks.

    ``tta_flip`` averages the prediction of the image and of its horizontal mirror (un-mirrored):
    the spine is close to left-right symmetric in appearance, so this cheaply reduces variance.
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
        from r2mfnet.training.checkpoint import load_model

        model = load_model(path)
        pre = model.preprocess_config
        return cls(model, input_size=pre["input_size"], use_clahe=bool(pre.get("clahe", False)), **kwargs)

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

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model(batch)["logits"].float()

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self._run(batch)
        prob = torch.sigmoid(logits[:, :1]) if logits.shape[1] == 1 else 1 - torch.softmax(logits, 1)[:, :1]
        if self.tta_flip:
            flipped = self._run(torch.flip(batch, dims=[3]))
            fprob = torch.sigmoid(flipped[:, :1]) if flipped.shape[1] == 1 else 1 - torch.softmax(flipped, 1)[:, :1]
            prob = 0.5 * (prob + torch.flip(fprob, dims=[3]))
        return prob[:, 0]

    def predict_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """Spine probability maps, each the size of its input image."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            prepared = [self.preprocess(img) for img in images[start : start + batch_size]]
            batch = torch.from_numpy(np.stack([p[0] for p in prepared])[:, None]).to(self.device)
            probs = self._forward(batch).cpu().numpy()
            out.extend(t.invert(p) for p, (_, t) in zip(probs, prepared))
        return out

    def predict_probability(self, image: np.ndarray) -> np.ndarray:
        return self.predict_probabilities([image])[0]

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Binary spine mask at the input's size."""
        return self.predict_probability(image) > self.threshold
