"""Overlay pictures and PNG writing shared by TensorBoard, evaluation and predict.

One picture rule everywhere, on the package's floor (numpy, OpenCV, :mod:`r2mfnet.atomic`), so
that training, evaluation and the applications draw masks the same way without importing each
other: the image in grey, the predicted mask tinted red with a yellow outline, and the ground
truth (when there is one) outlined in green. Outline widths scale with the image, so a
3000-pixel radiograph and a 64-pixel test image both stay legible.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from r2mfnet.atomic import atomic_write
from r2mfnet.errors import DataError

PREDICTION_TINT = (255, 0, 0)
PREDICTION_OUTLINE = (255, 220, 0)
TRUTH_OUTLINE = (0, 255, 0)


def overlay(image01: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 ``H x W x 3``: ``image01`` (values in [0, 1]) in grey, ``pred`` tinted red (40 %)
    with a yellow outline, ``gt``'s outline in green."""
    import cv2

    grey = np.clip(np.nan_to_num(image01) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    m = pred.astype(bool)
    rgb[m] = (0.6 * rgb[m] + 0.4 * np.array(PREDICTION_TINT)).astype(np.uint8)
    thick = max(1, int(round(max(m.shape) / 600)))
    for mask, colour in ((m, PREDICTION_OUTLINE), (gt, TRUTH_OUTLINE)):
        if mask is not None:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, contours, -1, colour, thick)
    return rgb


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Encode ``array`` (``H x W`` uint8/uint16, or ``H x W x 3`` RGB uint8) as PNG and write it
    atomically (OpenCV writes BGR, so RGB is converted here, once)."""
    import cv2

    arr = array if array.ndim == 2 else cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:  # pragma: no cover - OpenCV fails only on absurd input
        raise DataError("could not encode the PNG", path=path)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buf.tobytes()))
