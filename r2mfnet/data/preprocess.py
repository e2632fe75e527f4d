"""Preprocessing: intensity normalisation, CLAHE, and the letterbox resize with its exact inverse.

The model sees every image at one size ``(H, W)``; the letterbox keeps the aspect ratio (scale so
the image fits, centre it, pad with 0). :class:`LetterboxTransform` remembers the geometry, so
predictions are mapped back to each image's original resolution (``invert``) before metrics and
measurements are computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from r2mfnet.errors import ConfigError, DataError

__all__ = ["normalize_intensity", "clahe", "Letterbox", "LetterboxTransform"]


def normalize_intensity(arr: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to the ``[low, high]`` percentiles and rescale to ``[0, 1]`` (float32).

    Independent of bit depth: an 8-bit, 12-bit-in-16 or 16-bit version of one radiograph gives
    (nearly) the same output. If the percentiles coincide (mostly constant image) the full
    min-max range is used; a fully constant image gives zeros.
    """
    if not (0.0 <= low < high <= 100.0):
        raise ConfigError(f"normalize_intensity: need 0 <= low < high <= 100, got {low}, {high}")
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim != 2:
        raise DataError(f"normalize_intensity expects a 2-D grayscale array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError("image contains NaN or infinite values; it cannot be normalised")
    sample = a
    if a.size > 4_000_000:  # percentiles of a regular subsample: same to ~1e-3, much faster
        step = int(np.ceil(np.sqrt(a.size / 4_000_000)))
        sample = a[::step, ::step]
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:
        lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.float32)
    out = (a - lo) * np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)


def clahe(img01: np.ndarray, clip_limit: float = 2.0, tile_grid: int | tuple[int, int] = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of a [0, 1] image (16-bit internally)."""
    import cv2

    if isinstance(tile_grid, int):
        tile_grid = (tile_grid, tile_grid)
    if clip_limit <= 0 or min(tile_grid) < 1:
        raise ConfigError(f"clahe: clip_limit must be > 0 and tiles >= 1, got {clip_limit}, {tile_grid}")
    a = np.asarray(img01, dtype=np.float32)
    u16 = np.round(np.clip(a, 0.0, 1.0) * 65535.0).astype(np.uint16)
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid[1]), int(tile_grid[0])))
    return (op.apply(u16).astype(np.float32) / np.float32(65535.0)).astype(np.float32)


@dataclass(frozen=True)
class LetterboxTransform:
    """Geometry of one letterbox: original ``(h, w)`` -> resized ``(new_h, new_w)`` placed at
    ``(pad_top, pad_left)`` inside the target ``(H, W)``.

    ``scale`` is the nominal scale factor; the exact per-axis factors after rounding are
    ``scale_y = new_h / h`` and ``scale_x = new_w / w``.
    """

    original_hw: tuple[int, int]
    target_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    pad_top: int
    pad_left: int
    scale: float

    @property
    def scale_y(self) -> float:
        return self.resized_hw[0] / self.original_hw[0]

    @property
    def scale_x(self) -> float:
        return self.resized_hw[1] / self.original_hw[1]

    @property
    def pad_bottom(self) -> int:
        return self.target_hw[0] - self.resized_hw[0] - self.pad_top

    @property
    def pad_right(self) -> int:
        return self.target_hw[1] - self.resized_hw[1] - self.pad_left

    # ---- forward ------------------------------------------------------------------------
    def _check(self, arr: np.ndarray, hw: tuple[int, int], what: str) -> None:
        if arr.ndim not in (2, 3) or tuple(arr.shape[:2]) != tuple(hw):
            raise ValueError(f"{what}: expected an array of size {hw} (HxW[xC]), got {arr.shape}")

    def apply_image(self, arr: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
        """Resize (INTER_AREA when shrinking, linear when enlarging) and pad; float32."""
        import cv2

        a = np.asarray(arr)
        self._check(a, self.original_hw, "apply_image")
        a = a.astype(np.float32, copy=False)
        nh, nw = self.resized_hw
        shrinking = nh < self.original_hw[0] or nw < self.original_hw[1]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        if (nh, nw) == tuple(self.original_hw):
            resized = a
        else:
            resized = cv2.resize(a, (nw, nh), interpolation=interp)
        if resized.ndim == 2 and a.ndim == 3:
            resized = resized[:, :, None]
        out = np.full(tuple(self.target_hw) + a.shape[2:], pad_value, dtype=np.float32)
        out[self.pad_top : self.pad_top + nh, self.pad_left : self.pad_left + nw] = resized
        return out

    def apply_mask(self, mask: np.ndarray) -> np.ndarray:
        """Resize a binary mask as float (area/linear), threshold at 0.5, pad with False."""
        m = np.asarray(mask)
        if m.ndim != 2:
            raise ValueError(f"apply_mask expects a 2-D mask, got shape {m.shape}")
        return self.apply_image(m.astype(np.float32)) >= 0.5

    # ---- inverse ------------------------------------------------------------------------
    def invert(self, map_hw: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """Map a model-size map (HxW or HxWxC) back to the original image size.

        Crops the padding and resizes back (``"linear"`` for probabilities/logits, ``"nearest"``
        for label maps). A bool map is resized as float and thresholded at 0.5 and comes back
        bool; other inputs come back float32.
        """
        import cv2

        m = np.asarray(map_hw)
        self._check(m, self.target_hw, "invert")
        is_bool = m.dtype == np.bool_
        nh, nw = self.resized_hw
        crop = m[self.pad_top : self.pad_top + nh, self.pad_left : self.pad_left + nw]
        crop = np.ascontiguousarray(crop, dtype=np.float32)
        h, w = self.original_hw
        if interpolation not in ("linear", "nearest"):
            raise ConfigError(f"invert: interpolation must be 'linear' or 'nearest', got {interpolation!r}")
        if (nh, nw) == (h, w):
            out = crop
        else:
            interp = cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR
            out = cv2.resize(crop, (w, h), interpolation=interp)
            if out.ndim == 2 and m.ndim == 3:
                out = out[:, :, None]
        if is_bool:
            return out >= 0.5
        return out.astype(np.float32, copy=False)

    # ---- coordinates --------------------------------------------------------------------
    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Original-image pixel coordinates (x, y) -> model-input coordinates (pixel centres)."""
        p = np.asarray(xy, dtype=np.float64)
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] + 0.5) * self.scale_x - 0.5 + self.pad_left
        out[..., 1] = (p[..., 1] + 0.5) * self.scale_y - 0.5 + self.pad_top
        return out

    def invert_points(self, xy: np.ndarray) -> np.ndarray:
        """Model-input coordinates (x, y) -> original-image pixel coordinates."""
        p = np.asarray(xy, dtype=np.float64)
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] - self.pad_left + 0.5) / self.scale_x - 0.5
        out[..., 1] = (p[..., 1] - self.pad_top + 0.5) / self.scale_y - 0.5
        return out


class Letterbox:
    """Aspect-preserving resize plus centred zero padding to ``(height, width)``."""

    def __init__(self, height: int, width: int):
        try:
            h, w = int(height), int(width)
        except (TypeError, ValueError):
            raise ConfigError(f"Letterbox size must be two integers, got {height!r}, {width!r}") from None
        if h < 1 or w < 1 or h != height or w != width:
            raise ConfigError(f"Letterbox size must be positive integers, got {height!r}, {width!r}")
        self.height, self.width = h, w

    def __repr__(self) -> str:
        return f"Letterbox(height={self.height}, width={self.width})"

    def fit(self, image_hw: tuple[int, int] | np.ndarray) -> LetterboxTransform:
        """The transform for an image of size ``image_hw`` (a shape tuple or the image itself)."""
        if isinstance(image_hw, np.ndarray):
            image_hw = image_hw.shape[:2]
        h, w = int(image_hw[0]), int(image_hw[1])
        if h < 1 or w < 1:
            raise DataError(f"cannot letterbox an image of size {h} x {w}")
        H, W = self.height, self.width
        scale = min(H / h, W / w)
        nh = min(H, max(1, int(round(h * scale))))
        nw = min(W, max(1, int(round(w * scale))))
        top = (H - nh) // 2
        left = (W - nw) // 2
        return LetterboxTransform(
            original_hw=(h, w),
            target_hw=(H, W),
            resized_hw=(nh, nw),
            pad_top=top,
            pad_left=left,
            scale=float(scale),
        )
