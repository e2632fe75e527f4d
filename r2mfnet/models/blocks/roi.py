"""Region-of-interest geometry for R2MF-Net's ``fine_crop`` cascade: boxes, crops, paste-back.

Why: on real radiographs the spine is a narrow column. Running the fine network on a crop around
it, at its own resolution, spends its pixels on the spine instead of on ribs and background.

Conventions (torchvision's with ``aligned=True``): a box is ``(x0, y0, x1, y1)`` in input pixels,
pixel ``i`` covers ``[i, i + 1)`` and its centre is ``i + 0.5``. A crop of ``(h, w)`` samples the
box at the centres of an ``h x w`` grid laid over it; pasting back samples the crop at the centres
of the input pixels that lie inside the box. For a box on whole pixels that is exactly ``h x w``
pixels large both are the identity, so a crop pasted back lands where it came from, to the pixel.

Every function here works on a batch (one box per image) and has no parameters.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

SAMPLING_RATIO = 0
"""``roi_align``'s samples per output bin and axis. 0 = adaptive, ``ceil(box / crop)``: when the
box is larger than the crop (shrinking, e.g. a 1000-px spine into 768 rows) each crop pixel
averages every input pixel its bin covers (an area filter, no aliasing of the 1-3 px gaps between
vertebrae); when the box is at most the crop size (a feature map or the coarse logits, which are
always magnified) it is one bilinear sample at the bin centre, so a crop of exactly the box size is
a copy. A fixed ratio would either alias when shrinking (1) or blur the copy case (2: four samples
a quarter pixel off the centre)."""


def mask_boxes(mask: Tensor) -> Tensor:
    """Tight box of each mask's foreground, on pixel edges; an empty mask gives the whole image.

    ``mask``: ``[B, H, W]`` bool. Returns ``[B, 4]`` float ``(x0, y0, x1, y1)``, ``x1`` exclusive
    (a single foreground pixel at row 3, column 5 gives ``(5, 3, 6, 4)``).
    """
    _, h, w = mask.shape

    def extent(present: Tensor, n: int) -> tuple[Tensor, Tensor]:
        index = torch.arange(n, device=mask.device)
        empty = ~present.any(1)
        lo = torch.where(present, index, n).amin(1).masked_fill(empty, 0)
        hi = torch.where(present, index + 1, 0).amax(1).masked_fill(empty, n)
        return lo, hi

    y0, y1 = extent(mask.any(2), h)
    x0, x1 = extent(mask.any(1), w)
    return torch.stack([x0, y0, x1, y1], 1).float()


def scale_boxes(boxes: Tensor, from_size: Sequence[int], to_size: Sequence[int]) -> Tensor:
    """Boxes on a ``from_size`` (H, W) grid expressed on a ``to_size`` grid of the same field of view."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return boxes * boxes.new_tensor([sx, sy, sx, sy])


def jitter_boxes(boxes: Tensor, shift: float, scale: Sequence[float]) -> Tensor:
    """Randomly move and resize each box, so that training sees the box errors inference makes.

    The centre moves by up to ``±shift`` times the box's width (x) and height (y); both sides are
    then multiplied by one factor drawn uniformly from ``[scale[0], scale[1]]``. The draws come from
    torch's global CPU generator (saved in every resumable checkpoint, so a resumed run draws the
    same boxes; the same on CPU and CUDA).
    """
    r = torch.rand(boxes.shape[0], 3).to(boxes)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + (2 * r[:, :2] - 1) * shift * size
    half = size * (scale[0] + (scale[1] - scale[0]) * r[:, 2:]) / 2
    return torch.cat([centre - half, centre + half], 1)


def fit_boxes(boxes: Tensor, image_size: Sequence[int], crop_size: Sequence[int],
              margin: float) -> Tensor:
    """The box the fine network actually crops, from a box around the spine.

    In order: grow each side by ``margin`` times the box size (context around the spine, and room
    for a coarse box that was too tight); widen or heighten to the crop's aspect ratio (so the
    crop is resampled by the same factor along both axes); grow to at least ``crop_size`` input
    pixels (magnifying beyond the input's resolution adds cost, not detail, and it keeps a box
    from a few stray coarse pixels from zooming into noise); shrink to the image and move inside
    it; round outward to whole pixels. Only a box larger than the image along one axis ends up
    with another aspect ratio (the crop is then stretched a little along that axis).
    """
    h, w = float(image_size[0]), float(image_size[1])
    ch, cw = float(crop_size[0]), float(crop_size[1])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0) * (1 + 2 * margin)
    bw = torch.maximum(size[:, 0], size[:, 1] * (cw / ch))
    grow = torch.clamp(cw / bw.clamp(min=1e-6), min=1.0)  # at least crop_size (same aspect)
    bw = (bw * grow).clamp(max=w)
    bh = (bw * (ch / cw)).clamp(max=h)
    left = torch.minimum(centre[:, 0] - bw / 2, w - bw).clamp(min=0)
    top = torch.minimum(centre[:, 1] - bh / 2, h - bh).clamp(min=0)
    return torch.stack([left.floor(), top.floor(), (left + bw).ceil().clamp(max=w),
                        (top + bh).ceil().clamp(max=h)], 1)


def crop(features: Tensor, boxes: Tensor, image_size: Sequence[int],
         out_size: Sequence[int]) -> Tensor:
    """``roi_align`` crop of ``features`` (any resolution of the input's field of view) to ``out_size``.

    ``boxes`` are in input pixels (``image_size`` = (H, W)); they are scaled to the feature grid
    per axis, because a coarse grid need not have the input's aspect ratio and ``roi_align``'s
    single ``spatial_scale`` could not express that.
    """
    boxes = scale_boxes(boxes, image_size, features.shape[-2:]).to(features.dtype)
    index = torch.arange(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)[:, None]
    return roi_align(features, torch.cat([index, boxes], 1), [int(s) for s in out_size],
                     spatial_scale=1.0, sampling_ratio=SAMPLING_RATIO, aligned=True)


def paste(crops: Tensor, boxes: Tensor, background: Tensor) -> Tensor:
    """Resample each crop into its box over ``background`` ``[B, C, H, W]`` (differentiable in both).

    Input pixel ``X`` inside box ``(x0, x1)`` reads the crop at normalised position
    ``2 (X + 0.5 - x0) / (x1 - x0) - 1`` (``grid_sample``, ``align_corners=False``: the inverse of
    :func:`crop`'s sampling); pixels whose centre lies outside the box keep the background.
    """
    b, _, h, w = background.shape
    x0, y0, x1, y1 = boxes.to(crops.dtype).unbind(1)
    cols = torch.arange(w, device=crops.device, dtype=crops.dtype) + 0.5
    rows = torch.arange(h, device=crops.device, dtype=crops.dtype) + 0.5
    gx = 2 * (cols[None] - x0[:, None]) / (x1 - x0)[:, None] - 1  # [B, W]
    gy = 2 * (rows[None] - y0[:, None]) / (y1 - y0)[:, None] - 1  # [B, H]
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)
    pasted = F.grid_sample(crops, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (gy.abs() < 1)[:, None, :, None] & (gx.abs() < 1)[:, None, None, :]
    return torch.where(inside, pasted, background.to(pasted.dtype))


def crop_rows(boxes: Tensor, image_height: int, crop_size: Sequence[int]) -> Tensor:
    """``[B, 1, h, w]`` row coordinate of each crop pixel in the whole image (-1 top .. 1 bottom).

    The same scale as the uncropped model's row input (row ``r`` of an ``H``-row image is
    ``-1 + 2 r / (H - 1)``): a vertebra's name depends on where it lies in the radiograph, not in
    the crop.
    """
    ch, cw = int(crop_size[0]), int(crop_size[1])
    y0, y1 = boxes[:, 1:2], boxes[:, 3:4]
    centres = torch.arange(ch, device=boxes.device, dtype=boxes.dtype)[None] + 0.5
    row = y0 + centres * (y1 - y0) / ch - 0.5  # input row index of each crop row's centre
    value = -1 + 2 * row / max(image_height - 1, 1)
    return value[:, None, :, None].expand(-1, 1, ch, cw)


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Resize as the data pipeline letterboxes: area average when shrinking, bilinear otherwise.

    Area when shrinking: each coarse pixel is the mean of the input pixels it covers, what a
    radiograph recorded at the coarse size would show (the 1-3 px gaps average out instead of
    aliasing into random stripes).
    """
    size = [int(s) for s in size]
    if list(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def upsample(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Logits of a coarse grid at input resolution (bilinear, pixel centres aligned)."""
    size = [int(s) for s in size]
    if list(logits.shape[-2:]) == size:
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


__all__ = ["SAMPLING_RATIO", "crop", "crop_rows", "fit_boxes", "jitter_boxes",
           "mask_boxes", "paste", "resize", "scale_boxes", "upsample"]
