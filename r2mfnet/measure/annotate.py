"""Pictures of a measurement: mask outline, centreline, Cobb end-plate lines and the numbers.

All pictures are RGB ``uint8`` arrays (``H x W x 3``); save them with
``cv2.imwrite(path, picture[..., ::-1])`` (OpenCV writes BGR). Text uses OpenCV's Hershey font,
which has no degree sign, so angles are written as ``"45.2 deg"``. Line widths and text size scale
with the image so that full-resolution radiographs and small test images both stay legible.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from r2mfnet.measure.centreline import Centreline
from r2mfnet.measure.cobb import CobbResult

RGB = tuple[int, int, int]
OUTLINE: RGB = (0, 220, 0)
CENTRELINE: RGB = (255, 220, 0)
CURVE_COLOURS: tuple[RGB, ...] = ((255, 60, 60), (60, 160, 255), (255, 0, 255), (0, 230, 230))
TEXT: RGB = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(h: int, w: int) -> tuple[int, float]:
    """(line thickness, font scale) for an image of this size."""
    s = max(h, w)
    return max(1, int(round(s / 400))), max(0.4, s / 1400)


def _to_rgb(image01: np.ndarray | None, shape: tuple[int, int] | None) -> np.ndarray:
    if image01 is None:
        if shape is None:
            raise ValueError("give an image or a mask to draw on")
        return np.zeros((*shape, 3), np.uint8)
    img = np.asarray(image01)
    if img.ndim == 3 and img.shape[2] == 3:
        if img.dtype == np.uint8:
            return img.copy()
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    if img.ndim != 2:
        raise ValueError(f"image must be H x W (or H x W x 3), got shape {img.shape}")
    if img.dtype == np.uint8:
        g = img
    else:
        g = (np.clip(np.nan_to_num(img.astype(np.float32)), 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int,
          colour: RGB = TEXT, box: bool = True) -> None:
    """Text with a dark box behind it, kept inside the image."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    h, w = img.shape[:2]
    x = int(np.clip(org[0], 0, max(0, w - tw - 2)))
    y = int(np.clip(org[1], th + 2, max(th + 2, h - base - 2)))
    if box:
        cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base + 1), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), FONT, scale, colour, thick, cv2.LINE_AA)


def _endplate_line(img, x, y, tilt_deg, half_len, colour, thick) -> None:
    a = np.radians(tilt_deg)
    d = np.array([np.cos(a), np.sin(a)]) * half_len  # image coords, y down: positive = right lower
    p0 = (int(round(x - d[0])), int(round(y - d[1])))
    p1 = (int(round(x + d[0])), int(round(y + d[1])))
    cv2.line(img, p0, p1, colour, thick, cv2.LINE_8)


def draw_measurement(
    image01: np.ndarray | None,
    mask: np.ndarray | None = None,
    centreline: Centreline | None = None,
    cobb: CobbResult | None = None,
    label: str | None = None,
    error: str | None = None,
) -> np.ndarray:
    """One view: image, mask outline, centreline, end-plate lines of each curve, angles.

    ``image01`` is a grey image in [0, 1] (or ``None`` for a black background of the mask's
    size). Each curve gets a colour; its two end-plate lines pass through the centreline at the
    end levels **at the end vertebrae's tilt** (so the Cobb angle is the angle between them), and
    its angle and end levels are written beside its apex on the convex side. The header line gives
    ``label`` and the main / PT / MT / TL angles, or ``error`` when the view was not measurable.
    """
    shape = None if mask is None else tuple(np.asarray(mask).shape[:2])
    img = _to_rgb(image01, shape)  # type: ignore[arg-type]
    h, w = img.shape[:2]
    thick, fs = _scale(h, w)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape[:2] != (h, w):
            raise ValueError(f"mask shape {m.shape} differs from image shape {(h, w)}")
        contours, _ = cv2.findContours((m > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, OUTLINE, thick, cv2.LINE_8)
    if centreline is not None:
        pts = np.stack([centreline.xs, centreline.ys], axis=1).round().astype(np.int32)
        cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, CENTRELINE, thick, cv2.LINE_8)
    if cobb is not None:
        width = centreline.median_width() if centreline is not None else 0.0
        half_len = max(0.9 * width, 0.06 * w)
        for i, c in enumerate(cobb.curves):
            col = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            _endplate_line(img, c.upper_x, c.upper_y, c.upper_tilt_deg, half_len, col, thick + 1)
            _endplate_line(img, c.lower_x, c.lower_y, c.lower_tilt_deg, half_len, col, thick + 1)
            text = f"{c.angle_deg:.1f} deg {c.upper_level}-{c.lower_level}"
            (tw, _), _ = cv2.getTextSize(text, FONT, fs, thick)
            dx = 1.2 * half_len if c.side == "right" else -1.2 * half_len - tw
            _text(img, text, (int(c.apex_x + dx), int(c.apex_y)), fs, thick, col)
    header = [label] if label else []
    if error:
        header.append(f"not measured: {error}")
    elif cobb is not None:
        header.append(
            f"main {cobb.main_angle:.1f} | PT {cobb.pt_angle:.1f} | MT {cobb.mt_angle:.1f} | "
            f"TL/L {cobb.tl_angle:.1f} deg"
        )
    y = 0
    for line in (part for text in header for part in wrap_text(text, fs, thick, w - 8)):
        (_, th), base = cv2.getTextSize(line, FONT, fs, thick)
        y += th + base + 6
        _text(img, line, (4, y), fs, thick)
    return img


def wrap_text(text: str, scale: float, thick: int, max_width: int) -> list[str]:
    """``text`` broken into lines no wider than ``max_width`` pixels at this font size.

    Why: a narrow radiograph's title (case id, view name, angles) is wider than the picture, and
    drawn on one line its end (the view name and the case suffix) was cut off. Lines break at
    ``" | "`` first, then at spaces; a single word wider than ``max_width`` is cut into pieces
    that fit, so no character is ever lost.
    """
    def fits(s: str) -> bool:
        return cv2.getTextSize(s, FONT, scale, thick)[0][0] <= max_width

    lines: list[str] = []
    for chunk in text.split(" | "):
        if lines and fits(f"{lines[-1]} | {chunk}"):
            lines[-1] = f"{lines[-1]} | {chunk}"
            continue
        line = ""
        for word in chunk.split(" "):
            candidate = f"{line} {word}" if line else word
            if fits(candidate):
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while not fits(line) and len(line) > 1:  # one word wider than the picture: cut it
                cut = max((k for k in range(1, len(line)) if fits(line[:k])), default=1)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def side_by_side(
    pictures: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    title: str | None = None,
    height: int | None = None,
    gap: int = 8,
) -> np.ndarray:
    """Several RGB pictures in a row at a common height, with captions and a title bar.

    ``pictures`` is a list, or a mapping ``{caption: picture}`` (e.g. the three views). Each is
    resized to ``height`` (default: the tallest picture's height, capped at 1600 pixels so a
    report of three radiographs stays a reasonable file).
    """
    if isinstance(pictures, Mapping):
        items = list(pictures.items())
    else:
        items = [(None, p) for p in pictures]
    if not items:
        raise ValueError("no pictures to put side by side")
    rgb = [(cap, _to_rgb(p, None)) for cap, p in items]
    target = height or min(max(p.shape[0] for _, p in rgb), 1600)
    resized = []
    for cap, p in rgb:
        scale = target / p.shape[0]
        new_w = max(1, int(round(p.shape[1] * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized.append((cap, cv2.resize(p, (new_w, target), interpolation=interp)))
    thick, fs = _scale(target, target)
    (_, th), base = cv2.getTextSize("Ag", FONT, fs, thick)
    line_h = th + base + 6
    total_w = sum(p.shape[1] for _, p in resized) + gap * (len(resized) + 1)
    # Captions and title wrap to the width they have (a narrow view's caption to its picture's):
    # the whole name is always shown, on as many lines as it needs.
    captions = [wrap_text(str(cap), fs, thick, p.shape[1]) if cap else [] for cap, p in resized]
    cap_h = max(len(c) for c in captions) * line_h + 4 if any(captions) else 0
    title_lines = wrap_text(title, 1.2 * fs, thick, total_w - 2 * gap) if title else []
    title_line_h = int(1.4 * (th + base)) + 4
    title_h = len(title_lines) * title_line_h + 8 if title else 0
    out = np.full((title_h + cap_h + target + gap, total_w, 3), 32, np.uint8)
    for i, line in enumerate(title_lines):
        _text(out, line, (gap, (i + 1) * title_line_h - base), 1.2 * fs, thick, box=False)
    x = gap
    for caption, (_, p) in zip(captions, resized):
        out[title_h + cap_h : title_h + cap_h + target, x : x + p.shape[1]] = p
        for i, line in enumerate(caption):
            _text(out, line, (x, title_h + (i + 1) * line_h - base), fs, thick, box=False)
        x += p.shape[1] + gap
    return out
