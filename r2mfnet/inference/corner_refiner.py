"""Vertebra tilts read from the radiograph by the corner network, where a mask found each vertebra.

Why
    The end-plate method (:mod:`r2mfnet.measure.vertebrae`) reads each tilt from the outline of
    a mask predicted at the model's input size; that outline is most of the Cobb angle's error
    (``docs/clinical.md``). The corner network (:mod:`r2mfnet.models.corner_net`) looks at the
    radiograph at full resolution instead. The mask still does what it does well: find the
    vertebrae, order them and give each a first tilt and width; so any model's masks (or
    another library's) go through the same refinement.
How
    For each vertebra measured on its own outline (``source`` ``"shape"`` or ``"split"``, with a
    width), a crop is cut at its centre, turned by its mask tilt, of side
    :data:`~r2mfnet.data.vertebra_crops.SIDE_PER_WIDTH` x its width; the network's corners give
    the tilt left in the crop, which is added. ``passes=2`` cuts a second crop on the first
    answer (centre of the corners, new tilt). With ``flip=True`` the mirrored crop is read too and
    the two answers averaged (as the masks' flip TTA). With ``merged=True`` (default) the
    fallback samples of merged pieces (``source`` ``"centreline"``: one per expected vertebra
    along a block the mask merged, tilted like the centreline) are re-read too, each with the
    median width of the outline-measured vertebrae within :data:`MERGED_WIDTH_LEVELS` levels (all
    of them if none is that near): the radiograph still shows the vertebrae the mask merged.
    Chosen on SpineWeb16 validation masks of four sources, where it lowered the main-angle MAE by
    0-0.11 deg and never raised it (docs/clinical.md, "Closing the budget" (h)). With
    ``gaps=True`` (default) a vertebra the mask missed altogether (or whose piece the
    measurement left out as misshapen) is read too: where two neighbouring vertebrae lie more than :data:`GAP_MIN_LEVELS` levels apart, one sample per
    missing level is placed evenly between them (``source`` ``"gap"``, its first tilt
    interpolated) and read like a merged sample (:func:`gap_samples`); the radiograph shows the
    vertebra the mask lost, and a missed end vertebra of a curve otherwise hands the angle to its
    less tilted neighbour. Chosen on validation with gaps made on purpose (docs/clinical.md,
    "Closing the budget" (i)).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Protocol, Sequence, TypeVar

import numpy as np
import torch

from r2mfnet.data.vertebra_crops import (SIDE_PER_WIDTH, CropFrame, extract_crop, grey_image, midline_tilt_uv,
                                         mirror_corners)
from r2mfnet.models.corner_net import CornerNet


class PlacedVertebra(Protocol):
    """What the refiner reads of a vertebra: :class:`r2mfnet.measure.vertebrae.VertebraTilt`
    (a dataclass; named here by its fields, as inference sits below the measurement layer)."""

    x: float
    y: float
    tilt_deg: float
    level_pos: float
    source: str
    width: float


V = TypeVar("V", bound=PlacedVertebra)

REFINED_SOURCES = ("shape", "split")
"""Vertebrae measured on their own outline: always re-read, with their own width."""
MERGED_SOURCE = "centreline"
"""Fallback samples of a merged piece: re-read with ``merged=True``, with their neighbours' width."""
GAP_SOURCE = "gap"
"""A vertebra the mask missed (or whose piece was left out as misshapen), placed between its
neighbours by :func:`gap_samples`."""
MERGED_WIDTH_LEVELS = 2.5
"""A merged or gap sample's crop width is the median of the outline-measured vertebrae this many
levels around it (vertebra widths change slowly along the spine)."""
GAP_MIN_LEVELS = 1.6
"""Neighbouring vertebrae further apart than this many levels have a vertebra missing between
them: measured vertebrae lie about one level apart (on the recipe U-Net's SpineWeb16 validation
masks 97 % of the steps are under 1.25 levels), two apart when one is missing."""


def gap_samples(vertebrae: Sequence[V], min_levels: float = GAP_MIN_LEVELS) -> list[V]:
    """The vertebrae (in level order) with samples of the ones the mask missed inserted.

    Between neighbours ``d > min_levels`` levels apart, ``round(d) - 1`` samples are spaced
    evenly; position, level and tilt are interpolated (a first guess: the refiner reads the
    tilt), ``source`` is :data:`GAP_SOURCE` and the width 0 (unknown, like a merged sample's).
    """
    out = list(vertebrae[:1])
    for a, b in zip(vertebrae[:-1], vertebrae[1:]):
        gap = b.level_pos - a.level_pos
        if gap > min_levels:
            missing = int(round(gap)) - 1
            for j in range(1, missing + 1):
                t = j / (missing + 1)
                out.append(replace(a, x=a.x + t * (b.x - a.x), y=a.y + t * (b.y - a.y),
                                   tilt_deg=a.tilt_deg + t * (b.tilt_deg - a.tilt_deg),
                                   level_pos=a.level_pos + t * gap, source=GAP_SOURCE, width=0.0))
        out.append(b)
    return out


def crop_widths(vertebrae: Sequence[PlacedVertebra], merged: bool = True) -> dict[int, float]:
    """The crop width of each vertebra the refiner re-reads (by index): its own for one measured
    on its outline, its neighbours' median for a gap sample and (``merged``) for a merged
    piece's sample; a sample is skipped when no vertebra was measured on its outline."""
    own = {i: float(v.width) for i, v in enumerate(vertebrae) if v.source in REFINED_SOURCES and v.width > 0}
    if not own:
        return own
    borrowing = {GAP_SOURCE, MERGED_SOURCE} if merged else {GAP_SOURCE}
    everyone = float(np.median(list(own.values())))
    out = dict(own)
    for i, v in enumerate(vertebrae):
        if v.source in borrowing:
            near = [w for j, w in own.items()
                    if abs(vertebrae[j].level_pos - v.level_pos) <= MERGED_WIDTH_LEVELS]
            out[i] = float(np.median(near)) if near else everyone
    return out


class CornerRefiner:
    """Re-reads vertebra tilts with a trained :class:`CornerNet` (see module doc)."""

    def __init__(self, model: CornerNet, passes: int = 1, flip: bool = True,
                 trained_on: Sequence[str] | None = None, chosen_on: Sequence[str] | None = None,
                 name: str = "corners", merged: bool = True, gaps: bool = True):
        if passes < 1:
            raise ValueError(f"passes must be at least 1, got {passes}")
        self.model = model.eval()
        self.passes = int(passes)
        self.flip = bool(flip)
        self.merged = bool(merged)
        """Re-read merged pieces' fallback samples too (module docstring)."""
        self.gaps = bool(gaps)
        """Read vertebrae the mask missed, between their neighbours (module docstring)."""
        self.trained_on = None if trained_on is None else frozenset(trained_on)
        """Case ids the network was trained on (``None``: not recorded)."""
        self.chosen_on = None if chosen_on is None else frozenset(chosen_on)
        """Case ids its epoch was chosen on (``None``: not recorded)."""
        self.name = name
        """What error messages call it (its file, when loaded from one)."""

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "CornerRefiner":
        """A refiner from a corner checkpoint written by :func:`save_corner_net` (loaded with
        ``weights_only=True``: the file is data, never code), with the case ids it records."""
        model, record = _load(path)
        return cls(model, trained_on=record.get("train_cases"), chosen_on=record.get("val_cases"),
                   name=str(path), **kwargs)

    @torch.no_grad()
    def _corners(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops[:, None], dtype=np.float32))
        uv = self.model(x).numpy().astype(np.float64)
        if self.flip:
            flipped = torch.from_numpy(np.ascontiguousarray(crops[:, None, :, ::-1], dtype=np.float32))
            uv = 0.5 * (uv + mirror_corners(self.model(flipped).numpy()))
        return uv

    def frames(self, image: np.ndarray, vertebrae: Sequence[PlacedVertebra]) -> dict[int, CropFrame]:
        """The final crop frame of each refined vertebra (by index): turned by the refined tilt,
        centred on the read corners."""
        grey = grey_image(image)
        size = self.model.size
        frames = {i: CropFrame(vertebrae[i].x, vertebrae[i].y, vertebrae[i].tilt_deg, SIDE_PER_WIDTH * w)
                  for i, w in crop_widths(vertebrae, self.merged).items()}
        for _ in range(self.passes):
            if not frames:
                break
            keys = list(frames)
            crops = np.stack([extract_crop(grey, frames[k], size) for k in keys])
            uv = self._corners(crops)
            for k, c in zip(keys, uv):
                f = frames[k]
                centre = f.to_image(c.mean(axis=0))
                turn = (float(midline_tilt_uv(c)) + 90.0) % 180.0 - 90.0  # a mid-line has no direction
                frames[k] = CropFrame(float(centre[0]), float(centre[1]), f.tilt_deg + turn, f.side)
        return frames

    def refine(self, image: np.ndarray, vertebrae: Sequence[V]) -> list[V]:
        """The vertebrae with their tilts read from ``image`` (positions and levels kept), and,
        with :attr:`gaps`, the vertebrae the mask missed, read there too (``source="gap"``, in
        level order among the others; a gap sample nothing could be read for is left out)."""
        placed = gap_samples(vertebrae) if self.gaps else list(vertebrae)
        frames = self.frames(image, placed)
        return [replace(v, tilt_deg=frames[i].tilt_deg) if i in frames else v
                for i, v in enumerate(placed) if i in frames or v.source != GAP_SOURCE]

    def check_unseen(self, case_ids: Sequence[str], split: str) -> None:
        """Refuse to evaluate ``val``/``test`` images the network was trained on (on ``val`` it may
        have chosen its epoch on them, like a segmentation model; on ``test`` not even that):
        one-line :class:`~r2mfnet.errors.ConfigError` naming the file (:attr:`name`) and an image.
        A file that does not record those images is refused too: it cannot be shown to be fair.
        ``train`` and ``all`` are said to include seen images, and are not checked."""
        from r2mfnet.errors import ConfigError

        if split in ("train", "all"):
            return  # said to include seen images (the segmentation model's too)
        if self.trained_on is None or (split != "val" and self.chosen_on is None):
            raise ConfigError(f"corner network '{self.name}' does not record the images it was trained and "
                              "chosen on; train it with r2mfnet-train-corners to evaluate it on held-out images")
        seen = self.trained_on | (self.chosen_on if split != "val" else frozenset())
        hit = sorted(set(case_ids) & seen)
        if hit:
            raise ConfigError(f"corner network '{self.name}' was trained or chosen on {len(hit)} of the evaluated "
                              f"{split} images (e.g. '{hit[0]}'): train it with split_from= the evaluated checkpoint")

    def for_image(self, image: np.ndarray) -> Callable[[Sequence[V]], list[V]]:
        """The ``refine=`` of :func:`~r2mfnet.measure.vertebrae.cobb_from_mask_vertebrae` for one
        radiograph."""
        return lambda vertebrae: self.refine(image, vertebrae)


def save_corner_net(model: CornerNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write a corner checkpoint: its weights, its crop size and ``extra`` (plain values;
    ``extra["train"]["train_cases"]`` / ``["val_cases"]``, the case ids it was trained and chosen
    on, let an evaluation refuse images it has seen: :meth:`CornerRefiner.check_unseen`)."""
    from r2mfnet.checkpoint import save_checkpoint

    state = {"kind": "corner_net", "model_config": {"name": "corner_net", "size": model.size,
                                                    "head": model.head_kind, "channels": list(model.channels),
                                                    "hidden": model.hidden},
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    state.update(extra or {})
    return save_checkpoint(path, state)


def load_corner_net(path: str | Path) -> CornerNet:
    """A :class:`CornerNet` from :func:`save_corner_net`'s file; one-line error for another file."""
    return _load(path)[0]


def _load(path: str | Path) -> tuple[CornerNet, dict]:
    """The network and the training record (``extra["train"]``, may be empty) of a corner file."""
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.errors import CheckpointError

    state = load_checkpoint(Path(path))
    if state.get("kind") != "corner_net":
        raise CheckpointError(f"'{path}' is not a corner-network checkpoint (train one with r2mfnet-train-corners)")
    try:
        config = state["model_config"]
        shape = {k: config[k] for k in ("channels", "hidden") if k in config}
        if "channels" in shape:
            shape["channels"] = tuple(int(c) for c in shape["channels"])
        model = CornerNet(int(config["size"]), head=str(config.get("head", "flatten")), **shape)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"'{path}': corner-network weights do not fit: {str(exc).splitlines()[0]}") from None
    record = state.get("train")
    return model.eval(), record if isinstance(record, dict) else {}
