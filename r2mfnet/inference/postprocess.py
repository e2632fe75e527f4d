"""The one place where model outputs become probabilities, masks and vertebra label maps.

Validation (:mod:`r2mfnet.training.validation`), the :class:`~r2mfnet.inference.predictor.Predictor`
and the vertebra-level path (:meth:`~r2mfnet.inference.predictions.MaskPredictions.predict_label_maps`) all call these functions, so that
the score kept during training, the evaluated masks and the measured masks follow one rule:

1. **Logits -> probabilities** (:func:`probabilities`): sigmoid for one channel, softmax over
   the channels for several (channel 0 = background, 1..K = vertebra classes).
2. **Probabilities -> foreground** (:func:`foreground_probability`): the sigmoid itself, or
   ``1 - p(background)``. A pixel is foreground when it exceeds ``threshold``. It is *not* an argmax
   over all classes, which would call a pixel background whenever the vertebra probability is
   split among neighbouring levels. A foreground pixel takes the **most probable vertebra class**
   (:func:`labels_from_channels`).
3. **Flip TTA** (:func:`flip_tta`): probabilities of the image and of its horizontal mirror
   (mirrored back) are averaged, for the final and the coarse output alike. Probabilities are
   averaged, not logits, so that one confident pass cannot outvote the other. The model runs
   through a caller-given function, which keeps the caller's device, AMP and memory-format settings.
4. **Anatomy-aware clean-up** (:func:`clean_mask`, parameters :class:`CleanupParams`, switched by
   ``eval.postprocess``). It runs at the original resolution, on the final mask, and is not part
   of validation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np
from scipy import ndimage
from scipy.special import expit
from scipy.special import softmax as _softmax

from r2mfnet.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where a function needs it: the ONNX predictor runs without it
    from torch import Tensor

__all__ = [
    "CleanupParams", "probabilities", "probabilities_np", "foreground_probability", "mask_from_logits",
    "classes_from_logits", "labels_from_channels", "flip_tta", "half_key", "clean_mask", "apply_cleanup",
    "cleanup_params",
]

# Foreground components are 8-connected (diagonal neighbours touch), as in r2mfnet.measure; holes
# are then the 4-connected background regions that scipy's binary_fill_holes finds.
_EIGHT = np.ones((3, 3), dtype=bool)
OUTPUT_KEYS = {"logits": "prob", "coarse_logits": "coarse_prob"}


# ----------------------------------------------------------------------------- the rule
def probabilities(logits: Tensor) -> Tensor:
    """``[B, C, H, W]`` logits -> probabilities: sigmoid if ``C == 1``, else softmax over C."""
    import torch

    logits = logits.float()
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)


def probabilities_np(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """NumPy twin of :func:`probabilities` (float32; ``axis`` = the channel axis), for the ONNX
    Runtime predictor, which runs without PyTorch. Same maths; tests/deploy checks that both
    give the same probabilities to float32 rounding and the same masks."""
    x = np.asarray(logits, dtype=np.float32)
    out = expit(x) if x.shape[axis] == 1 else _softmax(x, axis=axis)
    return out.astype(np.float32, copy=False)


def foreground_probability(prob: Any, axis: int = 1) -> Any:
    """Spine probability from :func:`probabilities` (tensor or array; ``axis`` = the channel axis):
    the sigmoid for one channel, ``1 - p(background)`` for several. Keeps the channel axis."""
    first = np.take(prob, [0], axis=axis) if isinstance(prob, np.ndarray) else prob.narrow(axis, 0, 1)
    return first if prob.shape[axis] == 1 else 1 - first


def mask_from_logits(logits: Tensor, threshold: float = 0.5) -> Tensor:
    """``[B, 1, H, W]`` one-channel logits -> bool mask ``sigmoid(logits) > threshold``.

    It is computed as ``logits > log(t / (1 - t))``, the same test without the sigmoid's float
    rounding near ``t``. At 0.5 this is ``logits > 0``, what validation has always scored.
    """
    if logits.shape[1] != 1:
        raise ValueError(f"mask_from_logits needs one channel, got {logits.shape[1]}; use classes_from_logits")
    return logits > math.log(threshold / (1 - threshold))


def classes_from_logits(logits: Tensor, threshold: float = 0.5) -> Tensor:
    """``[B, C, H, W]`` logits (C > 1) -> ``[B, H, W]`` class indices by the rule (module docstring).

    Foreground is tested as ``p(background) < 1 - threshold``, the exact form of
    ``1 - p(background) > threshold``.
    """
    import torch

    prob = probabilities(logits)
    labels = prob[:, 1:].argmax(1) + 1
    return torch.where(prob[:, 0] < 1 - threshold, labels, torch.zeros_like(labels))


def labels_from_channels(channels: Iterable[np.ndarray], threshold: float = 0.5,
                         foreground: np.ndarray | None = None) -> np.ndarray:
    """Per-class probability maps (background first, then vertebra 1..K), each ``[H, W]`` ->
    uint8 label map.

    The maps are consumed one at a time, so a caller can resize each map lazily and never hold
    all K maps at full resolution. ``foreground`` (bool ``[H, W]``) replaces the thresholded
    ``1 - p(background) > threshold``. The predictor passes the cleaned-up mask here, so the
    label map's union is exactly its binary mask. Ties between classes go to the lower class.
    """
    it = iter(channels)
    background = np.asarray(next(it), dtype=np.float32)
    fg = (1.0 - background > threshold) if foreground is None else np.asarray(foreground, bool)
    labels = np.zeros(background.shape, np.uint8)
    best = np.full(background.shape, -1.0, np.float32)
    for k, pk in enumerate(it, start=1):
        pk = np.asarray(pk, dtype=np.float32)
        take = pk > best
        best[take] = pk[take]
        labels[take] = k
    labels[~fg] = 0
    return labels


# ------------------------------------------------------------------------------ flip TTA
def half_key(half: str, name: str) -> str:
    """Where :func:`flip_tta` (``halves=True``) keeps one pass's own probabilities: ``"plain/prob"``,
    ``"mirrored/coarse_prob"``; one flat mapping, so that a batch splits per image as before."""
    return f"{half}/{name}"


def flip_tta(forward: Callable[[Tensor], Mapping[str, Tensor]], batch: Tensor, flip: bool = True,
             coarse: bool = True, halves: bool = False) -> dict[str, Tensor]:
    """Class probabilities of ``forward(batch)``, averaged with the mirrored pass when ``flip``.

    ``forward`` is the caller's model call, with the caller's device, autocast and
    channels_last. It returns the model's output dict. The result has ``"prob"`` (from
    ``"logits"``) and, when ``coarse`` and the model returns ``"coarse_logits"``, ``"coarse_prob"``.
    This holds for R2MF-Net with the cascade in eval mode. A horizontal flip moves vertebrae
    but does not rename them, so class channels are averaged as they are.

    ``halves`` (with ``flip``) also keeps each pass's own probabilities (:func:`half_key`), so that
    the review page's flip-TTA check needs no third and fourth pass: the plain pass's, and the
    mirrored pass's as the model gave them, in the mirror image's frame (the caller mirrors its
    mask back, as for a mirror image predicted on its own). The averages are the same either way.
    """
    import torch

    keys = {k: v for k, v in OUTPUT_KEYS.items() if coarse or k == "logits"}
    out = forward(batch)
    prob = {keys[k]: probabilities(v) for k, v in out.items() if k in keys}
    if not flip:
        return prob
    mirrored = forward(torch.flip(batch, dims=[-1]))
    result: dict[str, Tensor] = {}
    for key, name in keys.items():
        if name in prob:
            mirror_prob = probabilities(mirrored[key])
            result[name] = 0.5 * (prob[name] + torch.flip(mirror_prob, dims=[-1]))
            if halves:
                result[half_key("plain", name)] = prob[name]
                result[half_key("mirrored", name)] = mirror_prob
    return result


# ------------------------------------------------------------------------------ clean-up
@dataclass
class CleanupParams:
    """Parameters of :func:`clean_mask`. Each length is relative to the spine column's width
    ``w`` (median width of the column over its rows), so the rule does not depend on image
    size or field of view. Set a parameter to 0 to switch its step off.

    Defaults (conservative, not yet tuned on real data): a far component is one whose centre is
    1.5 widths from the centreline, so its whole body lies outside the column. A speck is
    smaller than 0.05 w², which is several times below the smallest vertebra (T1 is roughly
    0.7w x 0.5w). A hole is filled only when it is at most 0.3 w across. A gap between two
    vertebrae that touch at their corners spans most of the width, so it stays open.
    """

    max_offset: float = 1.5  # drop components whose centroid is > max_offset * w from the centreline
    min_size: float = 0.05  # drop components smaller than min_size * w^2 pixels
    max_hole: float = 0.3  # fill holes no wider and no taller than max_hole * w

    def __post_init__(self) -> None:
        # runs when the run config is validated, so a bad value stops the run before training
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"cleanup.{f.name} (eval.cleanup.{f.name} in a run config) must be a "
                                  f"number >= 0 (0 switches its step off), got {value!r}")


def cleanup_params(value: CleanupParams | Mapping[str, Any] | None) -> CleanupParams:
    """A :class:`CleanupParams` from itself, a mapping (config group ``eval.cleanup``) or None."""
    if value is None:
        return CleanupParams()
    if isinstance(value, CleanupParams):
        return value
    known = {f.name for f in fields(CleanupParams)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown cleanup key(s) {unknown}; known: {sorted(known)}")
    return CleanupParams(**value)


@dataclass
class _Column:
    """The spine column: centreline ``x`` per image row and a typical width (pixels)."""

    centre: np.ndarray  # float [H]
    width: float


def _column(reference: np.ndarray) -> _Column | None:
    """Centreline and width of the column occupied by ``reference`` (bool HxW), or None if empty.

    Per row, the centre is the median column of the reference pixels and the width is their count.
    The centre is median-filtered over about two widths of rows, so a blob that shares a few
    rows with the spine cannot pull it. Rows without reference pixels are interpolated, and
    rows beyond the ends keep the end value. The width is the median over rows.
    """
    rows = np.nonzero(reference.any(axis=1))[0]
    if rows.size == 0:
        return None
    counts = reference[rows].sum(axis=1)
    cols = np.arange(reference.shape[1])
    centres = np.array([np.median(cols[reference[r]]) for r in rows])
    width = float(np.median(counts))
    window = max(1, int(round(2 * width))) | 1
    if rows.size > 1 and window > 1:
        centres = ndimage.median_filter(centres, size=min(window, rows.size), mode="nearest")
    centre = np.interp(np.arange(reference.shape[0]), rows, centres)
    return _Column(centre=centre, width=width)


def _largest_components(comp: np.ndarray, areas: np.ndarray, share: float = 0.8) -> np.ndarray:
    """Bool mask of the largest components that together hold ``share`` of the foreground.

    This is the column's reference when no coarse mask is given. With separated vertebrae it
    keeps most of them. With a merged spine it keeps the spine. Small stray pieces stay out.
    """
    order = np.argsort(-areas, kind="stable")
    cum = np.cumsum(areas[order])
    n = int(np.searchsorted(cum, share * cum[-1])) + 1
    keep = np.zeros(areas.size + 1, bool)
    keep[order[:n] + 1] = True
    return keep[comp]


def clean_mask(mask: np.ndarray, params: CleanupParams | Mapping[str, Any] | None = None,
               reference: np.ndarray | None = None) -> np.ndarray:
    """Anatomy-aware clean-up of a bool spine mask (HxW). It never merges components.

    ``reference``: the model's coarse mask at the same size, when the model has a coarse stage.
    The spine column is estimated from it, or otherwise from the mask's largest components
    (:func:`_largest_components`). Then, in this order:

    1. **specks**: components smaller than ``min_size * w²`` are removed. Isolated pixels and
       crumbs are never a vertebra, and they inflate HD95.
    2. **far components**: a component whose centroid lies more than ``max_offset * w``
       horizontally from the centreline at its own row is removed (a rib, the heart border, a
       marker). The column follows the curve, so scoliotic vertebrae stay inside it.
    3. **holes**: a hole enclosed by one component is filled if it is at most ``max_hole * w``
       wide and tall and contains no other component. A vertebral body has no holes, but a
       dark pedicle or a noisy pixel can make one. Gaps between vertebrae are never closed.
       Two vertebrae remain two components, and the end plates that the Cobb measurement
       reads stay as they are. Filling only a single component's own holes cannot join
       two components, so the number of components never grows or shrinks in this step.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"clean_mask expects a 2-D mask, got shape {mask.shape}")
    p = cleanup_params(params)
    comp, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return mask.copy()
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(mask, comp, index).astype(np.float64)
    ref = np.asarray(reference, dtype=bool) if reference is not None else None
    if ref is None or ref.shape != mask.shape or not ref.any():
        ref = _largest_components(comp, areas)
    column = _column(ref)
    if column is None:  # pragma: no cover - ref is never empty here
        return mask.copy()
    w = column.width
    keep = np.ones(n + 1, bool)
    keep[0] = False
    if p.min_size > 0:
        keep[1:] &= areas >= p.min_size * w * w
    if p.max_offset > 0:
        centroids = np.array(ndimage.center_of_mass(mask, comp, index)).reshape(-1, 2)
        rows = np.clip(np.rint(centroids[:, 0]).astype(int), 0, mask.shape[0] - 1)
        keep[1:] &= np.abs(centroids[:, 1] - column.centre[rows]) <= p.max_offset * w
    out = keep[comp]
    if p.max_hole > 0:
        _fill_small_holes(out, comp, keep, p.max_hole * w)
    return out


def _fill_small_holes(out: np.ndarray, comp: np.ndarray, keep: np.ndarray, max_extent: float) -> None:
    """Fill, in place, each kept component's own holes no wider/taller than ``max_extent`` px."""
    for k, box in enumerate(ndimage.find_objects(comp), start=1):
        if box is None or not keep[k]:
            continue
        own = comp[box] == k
        holes = ndimage.binary_fill_holes(own) & ~own
        if not holes.any():
            continue
        hole_lab, m = ndimage.label(holes)  # 4-connected: the background's connectivity
        others = out[box] & ~own
        for j, hbox in enumerate(ndimage.find_objects(hole_lab), start=1):
            region = hole_lab[hbox] == j
            extent = max(hbox[0].stop - hbox[0].start, hbox[1].stop - hbox[1].start)
            if extent <= max_extent and not (others[hbox] & region).any():
                out[box][hbox][region] = True


def apply_cleanup(mask: np.ndarray, enabled: bool, params: CleanupParams | Mapping[str, Any] | None = None,
                  reference: np.ndarray | None = None) -> np.ndarray:
    """:func:`clean_mask` when ``enabled`` (``eval.postprocess``), else the mask unchanged."""
    return clean_mask(mask, params, reference) if enabled else np.asarray(mask, dtype=bool)
