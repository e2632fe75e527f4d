"""Square crops of one vertebra, turned level, for the corner network (issue 23).

Why
    A mask read at the model's input size (256 x 128) loses the end plates' outline: most of the
    Cobb angle's error budget is there (``docs/clinical.md``). A vertebra seen in the radiograph
    itself, at full resolution and turned so that it lies about level, shows its end plates;
    a small network can read its four corners from such a crop (:mod:`r2mfnet.models.corner_net`).
How
    A crop is a square of side ``side`` pixels of the radiograph, centred on a point and turned by
    a tilt (degrees, positive = right end lower, as :func:`r2mfnet.geometry.vertebra_tilts_deg`),
    resampled to ``size`` x ``size`` and normalised to zero mean and unit spread. Its
    :class:`CropFrame` maps points both ways between the radiograph and the crop's coordinates,
    which run from -1 to 1 (left to right, top to bottom), so that corners of every vertebra size
    are of the same scale. Training crops (:func:`jittered_frames`) are placed around the
    landmarks' own vertebra with random shifts, turns and sizes, as far off as a predicted mask's
    vertebra places them at inference.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from r2mfnet.geometry import midline_tilt_deg


SIDE_PER_WIDTH = 1.6
"""Crop side over the vertebra's width: the whole body with its discs' edges, not its neighbours'."""


@dataclass(frozen=True)
class CropFrame:
    """Where a crop lies in the radiograph: centre ``(x, y)``, turn ``tilt_deg`` and ``side`` (px)."""

    x: float
    y: float
    tilt_deg: float
    side: float

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.radians(self.tilt_deg)
        along = np.array([np.cos(r), np.sin(r)])  # crop's +u (rightwards along the end plates)
        down = np.array([-np.sin(r), np.cos(r)])  # crop's +v (down the spine)
        return along, down

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Radiograph pixels ``(..., 2)`` (x, y) to crop coordinates in [-1, 1]."""
        along, down = self._axes()
        d = np.asarray(points, dtype=np.float64) - np.array([self.x, self.y])
        half = 0.5 * self.side
        return np.stack([d @ along / half, d @ down / half], axis=-1)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop coordinates ``(..., 2)`` back to radiograph pixels (x, y)."""
        along, down = self._axes()
        p = np.asarray(points, dtype=np.float64) * (0.5 * self.side)
        return np.array([self.x, self.y]) + p[..., :1] * along + p[..., 1:2] * down

    def affine(self, size: int) -> np.ndarray:
        """2 x 3 matrix taking crop pixel ``(col, row)`` of a ``size`` crop to radiograph (x, y)."""
        along, down = self._axes()
        scale = self.side / size
        origin = np.array([self.x, self.y]) - 0.5 * self.side * (along + down) + 0.5 * scale * (along + down)
        return np.column_stack([along * scale, down * scale, origin])


def grey_image(image: np.ndarray) -> np.ndarray:
    """A radiograph as one 2-D channel (the mean of its colour channels), kept in its own dtype
    when it already is one, so that crops are cut without copying the whole image again."""
    if image.ndim == 2:
        return image
    if image.ndim == 3:
        return image[..., :3].mean(axis=-1).astype(np.float32)
    raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")


def extract_crop(image: np.ndarray, frame: CropFrame, size: int = 64) -> np.ndarray:
    """The ``size`` x ``size`` float32 crop of a radiograph (:func:`grey_image` first) in
    ``frame``, zero mean and unit spread (outside the radiograph counts as black)."""
    grey = grey_image(image)
    if grey.dtype not in (np.uint8, np.uint16, np.float32):
        grey = grey.astype(np.float32)
    crop = cv2.warpAffine(grey, frame.affine(size), (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32)
    return (crop - crop.mean()) / max(float(crop.std()), 1e-3)


def vertebra_frames(corners: np.ndarray) -> list[CropFrame]:
    """The crop of each landmark vertebra (corners ``(n, 4, 2)``: TL, TR, BL, BR): centred on its
    corners' mean, turned by its mid-line tilt, side :data:`SIDE_PER_WIDTH` x its width (mean
    length of its two end plates)."""
    c = np.asarray(corners, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != (4, 2) or not np.isfinite(c).all():
        raise ValueError(f"corners must be finite with shape (n, 4, 2), got {c.shape}")
    tilts = midline_tilt_uv(c)  # the landmark mid-line's tilt (geometry.vertebra_tilts_deg's rule)
    widths = 0.5 * (np.linalg.norm(c[:, 1] - c[:, 0], axis=1) + np.linalg.norm(c[:, 3] - c[:, 2], axis=1))
    if np.any(widths <= 0):
        raise ValueError("a vertebra's corners coincide (no width): it has no crop")
    centres = c.mean(axis=1)
    return [CropFrame(float(x), float(y), float(t), float(SIDE_PER_WIDTH * w))
            for (x, y), t, w in zip(centres, tilts, widths)]


@dataclass(frozen=True)
class Jitter:
    """How far training crops stray from the landmark vertebra's own frame: shift (sd, in widths
    across and along the spine), turn (sd, degrees) and size (uniform factor range)."""

    shift_across: float = 0.08
    shift_along: float = 0.05
    turn_deg: float = 6.0
    size: tuple[float, float] = (0.85, 1.15)


def jittered_frames(frames: list[CropFrame], rng: np.random.Generator, jitter: Jitter = Jitter()
                    ) -> list[CropFrame]:
    """One randomly displaced copy of each frame (see :class:`Jitter`)."""
    out = []
    for f in frames:
        width = f.side / SIDE_PER_WIDTH
        along, down = f._axes()
        shift = (rng.normal(0.0, jitter.shift_across) * along + rng.normal(0.0, jitter.shift_along) * down) * width
        out.append(CropFrame(f.x + float(shift[0]), f.y + float(shift[1]),
                             f.tilt_deg + float(rng.normal(0.0, jitter.turn_deg)),
                             f.side * float(rng.uniform(*jitter.size))))
    return out


def flip_crop(crop: np.ndarray, corners_uv: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """A crop mirrored left to right, with its corners (TL, TR, BL, BR in crop coordinates)
    mirrored and renamed (a mirrored left corner is the new right one)."""
    flipped = np.ascontiguousarray(crop[:, ::-1])
    return flipped, None if corners_uv is None else mirror_corners(corners_uv)


def mirror_corners(corners_uv: np.ndarray) -> np.ndarray:
    """Corners ``(..., 4, 2)`` in crop coordinates mirrored left to right and renamed (the mirror
    of a left corner is the new right one), so that TL, TR, BL, BR stay in that order."""
    c = np.asarray(corners_uv, dtype=np.float64).copy()
    c[..., 0] = -c[..., 0]
    return c[..., [1, 0, 3, 2], :]


def midline_tilt_uv(corners_uv: np.ndarray) -> np.ndarray:
    """Mid-line tilt (degrees) of corners ``(..., 4, 2)`` in a crop's coordinates: the turn to add
    to the crop's own tilt (the crop's axes are equal in scale, so angles are kept)."""
    return midline_tilt_deg(corners_uv)
