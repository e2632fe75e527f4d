"""Anatomical sanity of the vertebrae measured on a mask: at most 17, plausible sizes, smooth tilts.

Why
    A model that also segments one or two pieces of the sacrum below L5 (or a piece of C7 above
    T1) hands the end-plate measurement an extra "vertebra" whose steep outline then sets the
    main angle: on SpineWeb16, U-Net masks with near-perfect vertebra F1 gave 66.9 deg where the
    experts measured 11.6 (issue 23). Nothing in the mask says which piece is not a vertebra, but
    anatomy does: a spine radiograph of this data has at most 17 measured vertebrae (T1-L5);
    neighbouring vertebrae have similar widths; the tilt changes from one level to the next by a
    bounded step. The rules work on the measured pieces only, whatever model (or hand) made the
    mask, so every mask goes through the same code.
Rules (thresholds from the experts' SpineWeb16 landmarks, 481 images, see ``docs/measure.md``)
    An end piece is **out of line** when its tilt differs from its inner neighbour's by more than
    :data:`END_STEP_DEG` (L4-L5 in the landmarks: 99th percentile 18.5 deg) or its width is
    outside :data:`WIDTH_RATIO` times its neighbour's (neighbouring widths in the landmarks:
    0.83-1.22 at the 1st / 99th percentile).

    1. **At most 17.** While more than :data:`MAX_VERTEBRAE` pieces remain, an end piece is
       dropped: the bottom one if it is out of line (the sacrum), else the top one if it is,
       else the one whose tilt departs more from its neighbour's. With 17 or fewer pieces nothing
       is dropped unless ``trim_ends=True`` (then out-of-line ends go too): on ground-truth masks
       the experts' own T1 and L5 are sometimes tilted 20-25 deg from their neighbours, and
       dropping them there costs more than it saves.
    2. **Flags** (the result is kept but marked doubtful): pieces dropped by rule 1 (the angle
       was corrected: worth a look); an end still out of line; an interior tilt step larger
       than :data:`INTERIOR_STEP_DEG`; an interior vertebra narrower or wider than both
       neighbours beyond :data:`WIDTH_RATIO`; fewer than :data:`MIN_VERTEBRAE` vertebrae (an end
       vertebra may be missing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from r2mfnet.measure.vertebrae import VertebraTilt

MAX_VERTEBRAE = 17
"""T1 to L5: the levels SpineWeb16 (and the AASCE rule) measure."""
END_STEP_DEG = 20.0
"""An end piece tilted further than this from its neighbour is not in line with the spine."""
INTERIOR_STEP_DEG = 30.0
"""An interior step beyond this (landmarks: 99th percentile of an image's largest, 30.6 deg) is
flagged, not corrected: between two vertebrae that both belong, nothing can be dropped."""
WIDTH_RATIO = (0.7, 1.45)
"""Plausible width of a vertebra relative to its neighbour (landmarks: 0.59-1.57 at the extremes)."""
MIN_VERTEBRAE = 12
"""Fewer measured vertebrae than this: parts of the spine (possibly an end vertebra) are missing."""


@dataclass(frozen=True)
class AnatomyCheck:
    """The vertebrae kept, the pieces dropped with the reason, and the flags of the result."""

    kept: tuple[VertebraTilt, ...]
    dropped: tuple[tuple[VertebraTilt, str], ...]
    flags: tuple[str, ...]


def _width_ok(a: VertebraTilt, b: VertebraTilt, ratio: tuple[float, float]) -> bool:
    """``a``'s width against its neighbour ``b``'s; unknown widths (fallback samples) pass."""
    if a.width <= 0 or b.width <= 0:
        return True
    return ratio[0] <= a.width / b.width <= ratio[1]


def _end_problem(vts: Sequence[VertebraTilt], top: bool, step_deg: float,
                 ratio: tuple[float, float]) -> str | None:
    """Why the top (or bottom) piece is out of line with its neighbour, or ``None``."""
    end, inner = (vts[0], vts[1]) if top else (vts[-1], vts[-2])
    where = "top" if top else "bottom"
    step = abs(end.tilt_deg - inner.tilt_deg)
    if step > step_deg:
        return f"{where} piece tilted {step:.0f} deg from its neighbour"
    if not _width_ok(end, inner, ratio):
        return f"{where} piece {end.width / inner.width:.2f} x its neighbour's width"
    return None


def _interior_flags(vts: Sequence[VertebraTilt], step_deg: float,
                    ratio: tuple[float, float]) -> list[str]:
    flags = []
    steps = [abs(b.tilt_deg - a.tilt_deg) for a, b in zip(vts[1:-2], vts[2:-1])]
    if steps and max(steps) > step_deg:
        flags.append(f"tilt jumps {max(steps):.0f} deg between neighbouring vertebrae")
    odd = sum(1 for a, v, b in zip(vts[:-2], vts[1:-1], vts[2:])
              if not _width_ok(v, a, ratio) and not _width_ok(v, b, ratio))
    if odd:
        flags.append(f"{odd} vertebra(e) of implausible width")
    return flags


def _drop_one_end(kept: list[VertebraTilt], step_deg: float, ratio: tuple[float, float],
                  forced: bool) -> tuple[VertebraTilt, str] | None:
    """Drop the out-of-line end (the bottom first); with ``forced``, else the less aligned end."""
    bottom = _end_problem(kept, False, step_deg, ratio)
    if bottom:
        return kept.pop(-1), f"dropped: {bottom}"
    top = _end_problem(kept, True, step_deg, ratio)
    if top:
        return kept.pop(0), f"dropped: {top}"
    if not forced:
        return None
    top_step = abs(kept[0].tilt_deg - kept[1].tilt_deg)
    bottom_step = abs(kept[-1].tilt_deg - kept[-2].tilt_deg)
    piece = kept.pop(-1) if bottom_step >= top_step else kept.pop(0)
    return piece, f"dropped: more than {MAX_VERTEBRAE} vertebrae, the less aligned end"


def check_anatomy(
    vertebrae: Sequence[VertebraTilt],
    *,
    max_vertebrae: int = MAX_VERTEBRAE,
    end_step_deg: float = END_STEP_DEG,
    interior_step_deg: float = INTERIOR_STEP_DEG,
    width_ratio: tuple[float, float] = WIDTH_RATIO,
    min_vertebrae: int = MIN_VERTEBRAE,
    trim_ends: bool = False,
) -> AnatomyCheck:
    """Apply the rules of the module docstring to vertebrae ordered top to bottom."""
    kept = list(vertebrae)
    dropped: list[tuple[VertebraTilt, str]] = []
    while len(kept) > 3 and (len(kept) > max_vertebrae or trim_ends):
        gone = _drop_one_end(kept, end_step_deg, width_ratio, forced=len(kept) > max_vertebrae)
        if gone is None:
            break
        dropped.append(gone)
    flags = [reason for _, reason in dropped]
    if len(kept) >= 3:
        flags += [f"not dropped: {p}" for p in (_end_problem(kept, True, end_step_deg, width_ratio),
                                               _end_problem(kept, False, end_step_deg, width_ratio)) if p]
        flags += _interior_flags(kept, interior_step_deg, width_ratio)
    if len(kept) < min_vertebrae:
        flags.append(f"only {len(kept)} vertebrae measured (an end vertebra may be missing)")
    return AnatomyCheck(tuple(kept), tuple(dropped), tuple(flags))
