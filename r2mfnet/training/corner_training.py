"""Training the corner network on landmark radiographs (:mod:`r2mfnet.models.corner_net`).

Why a loop of its own
    The segmentation trainer's stages, validation Dice and resume serve full images and masks;
    the corner network learns from many small crops that are cut afresh every epoch (each
    vertebra placed off its centre, turned and sized at random, as a predicted mask will place
    it), and is judged by the error of the tilt it implies. It trains in under half an hour on
    one CPU thread (SpineWeb16), so it is short: an AdamW loop with a cosine schedule, L1 loss on the corners, and a
    validation pass of fixed crops after each epoch; the epoch with the lowest validation tilt
    error is kept.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from r2mfnet.data.vertebra_crops import (CropFrame, Jitter, extract_crop, flip_crop, grey_image,
                                         jittered_frames, midline_tilt_uv, vertebra_frames)
from r2mfnet.models.corner_net import CornerNet


@dataclass(frozen=True)
class LandmarkImage:
    """One radiograph (grey, its own dtype) and its vertebrae's corners ``(n, 4, 2)``."""

    case_id: str
    image: np.ndarray
    corners: np.ndarray


@dataclass(frozen=True)
class CornerTrainConfig:
    """Settings of :func:`train_corner_net` (defaults: the run in ``docs/clinical.md``)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    size: int = 64
    head: str = "soft_argmax"
    seed: int = 0
    jitter: Jitter = field(default_factory=Jitter)


def crops_and_targets(images: Sequence[LandmarkImage], frames: Sequence[Sequence[CropFrame]],
                      size: int, rng: np.random.Generator | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Crops ``(N, 1, size, size)`` and their corners ``(N, 4, 2)`` in crop coordinates, one per
    frame; with ``rng``, each crop is mirrored with probability 1/2 (its corners renamed)."""
    crops, targets = [], []
    for item, fs in zip(images, frames):
        for frame, corners in zip(fs, item.corners):
            crop, uv = extract_crop(item.image, frame, size), frame.to_crop(corners)
            if rng is not None and rng.random() < 0.5:
                crop, uv = flip_crop(crop, uv)
            crops.append(crop)
            targets.append(uv)
    return np.stack(crops)[:, None].astype(np.float32), np.stack(targets).astype(np.float32)


def tilt_error_deg(pred_uv: np.ndarray, true_uv: np.ndarray) -> np.ndarray:
    """Absolute difference of the mid-line tilts implied by two sets of crop corners."""
    d = midline_tilt_uv(pred_uv) - midline_tilt_uv(true_uv)
    return np.abs((d + 90.0) % 180.0 - 90.0)


@torch.no_grad()
def predict_corners(model: nn.Module, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Corners ``(N, 4, 2)`` of crops ``(N, 1, S, S)`` (model put in eval mode)."""
    model.eval()
    out = [model(torch.from_numpy(crops[i:i + batch_size])).numpy()
           for i in range(0, len(crops), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 4, 2), np.float32)


def landmark_images(records: Sequence, read: Callable[[str], np.ndarray]) -> list[LandmarkImage]:
    """The records' radiographs (grey) with the corners of their landmarks JSON (a bad JSON is a
    one-line :class:`~r2mfnet.errors.DataError` naming the file)."""
    from r2mfnet.data.labels import read_landmarks
    from r2mfnet.errors import DataError

    out = []
    for r in records:
        corners = read_landmarks(r.landmarks)[0]
        widths = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1) + np.linalg.norm(corners[:, 3] - corners[:, 2], axis=1)
        if np.any(widths <= 0):
            raise DataError(f"vertebra {int(np.argmin(widths)) + 1} has no width (its corners coincide)", r.landmarks)
        out.append(LandmarkImage(r.case_id, grey_image(read(r.image)), corners))
    return out


def train_corner_net(train: Sequence[LandmarkImage], val: Sequence[LandmarkImage],
                     config: CornerTrainConfig = CornerTrainConfig(),
                     log: Callable[[str], None] = print) -> tuple[CornerNet, list[dict]]:
    """Train a :class:`CornerNet`; returns the epoch with the lowest validation tilt error (mean
    over ``val``'s vertebrae, crops jittered once with a fixed seed) and every epoch's history."""
    if not train or not val:
        raise ValueError("the corner network needs training and validation images with landmarks")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = CornerNet(config.size, head=config.head)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_rng = np.random.default_rng(config.seed + 10_000)
    val_frames = [jittered_frames(vertebra_frames(v.corners), val_rng, config.jitter) for v in val]
    val_x, val_y = crops_and_targets(val, val_frames, config.size)
    frames = [vertebra_frames(t.corners) for t in train]
    steps_per_epoch = math.ceil(sum(len(f) for f in frames) / config.batch_size)
    total = max(1, config.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    best_state, best_err, history = None, math.inf, []
    for epoch in range(1, config.epochs + 1):
        t0 = time.process_time()
        x, y = crops_and_targets(train, [jittered_frames(f, rng, config.jitter) for f in frames],
                                 config.size, rng)
        order = rng.permutation(len(x))
        model.train()
        losses = []
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            loss = nn.functional.l1_loss(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        err = tilt_error_deg(predict_corners(model, val_x), val_y)
        row = {"epoch": epoch, "train_l1": float(np.mean(losses)), "val_tilt_mae_deg": float(err.mean()),
               "val_tilt_median_deg": float(np.median(err)), "cpu_s": time.process_time() - t0}
        history.append(row)
        log(f"corners epoch {epoch}/{config.epochs}: train L1 {row['train_l1']:.4f}, "
            f"val tilt error {row['val_tilt_mae_deg']:.2f} deg (median {row['val_tilt_median_deg']:.2f})")
        if row["val_tilt_mae_deg"] < best_err:
            best_err = row["val_tilt_mae_deg"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:
        from r2mfnet.errors import TrainingError

        raise TrainingError("the corner network gave no finite validation tilt error in any epoch "
                            f"(diverged: try a smaller lr than {config.lr})")
    model.load_state_dict(best_state)
    model.eval()
    return model, history
