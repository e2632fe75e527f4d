"""TensorBoard logging (main process only); its pictures are :func:`r2mfnet.pictures.overlay`."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from r2mfnet.pictures import overlay


class TensorBoardLogger:
    """Thin wrapper over ``SummaryWriter`` that does nothing on non-main ranks."""

    def __init__(self, log_dir: Path | None) -> None:
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            self.writer.add_scalar(key, float(value), step)

    def overlays(self, tag: str, images: torch.Tensor, probs: torch.Tensor, masks: torch.Tensor, step: int) -> None:
        """Log ``[N,1,H,W]`` images with thresholded predictions and ground truth outlines."""
        if self.writer is None or images.numel() == 0:
            return
        pictures = [
            overlay(img[0].numpy(), prob[0].numpy() > 0.5, mask[0].numpy() > 0.5)
            for img, prob, mask in zip(images.float(), probs.float(), masks.float())
        ]
        self.writer.add_images(tag, np.stack(pictures), step, dataformats="NHWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
