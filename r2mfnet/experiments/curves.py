"""A Dice-against-CPU-minutes picture of several training runs, as a small standalone SVG.

Why SVG written by hand: the picture is a few polylines and axes; SVG is text (diffable, viewable
on GitHub and in any browser) and needs no plotting library in the core install. Input is the
``curve`` list each compare run keeps in its ``result.json`` (:mod:`r2mfnet.experiments.comparison`).
"""
from __future__ import annotations

import math
from html import escape
from typing import Any, Mapping, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
"""One colour per model (runs of the same model share it; seeds differ by dash pattern)."""

DASHES = ("", "6,3", "2,3", "8,3,2,3")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = max(high - low, 1e-9)
    step = 10 ** math.floor(math.log10(span / count))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def curves_svg(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    x_key: str = "cpu_seconds",
    y_key: str = "val_dice",
    x_scale: float = 1 / 60,
    title: str = "",
    x_label: str = "CPU minutes (cumulative, validation included)",
    y_label: str = "validation Dice",
    size: tuple[int, int] = (720, 420),
) -> str:
    """An SVG line chart: one polyline per run (``{label: curve}``; label "<model> seed <k>").

    Points without ``x_key`` or ``y_key`` are skipped; raises ``ValueError`` when no run has a
    point, so an empty picture is never written."""
    points = {
        label: [(float(p[x_key]) * x_scale, float(p[y_key])) for p in curve if x_key in p and y_key in p]
        for label, curve in runs.items()
    }
    points = {label: pts for label, pts in points.items() if pts}
    if not points:
        raise ValueError(f"no run has both '{x_key}' and '{y_key}' in its curve")
    xs = [x for pts in points.values() for x, _ in pts]
    ys = [y for pts in points.values() for _, y in pts]
    x_lo, x_hi = 0.0, max(xs) * 1.02
    y_lo = max(0.0, math.floor(min(ys) * 20) / 20)
    y_hi = min(1.0, math.ceil(max(ys) * 20) / 20 + 0.02)
    width, height = size
    left, right, top, bottom = 60, 190, 30 if title else 12, 45
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo or 1) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo or 1)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        out.append(f'<text x="{left}" y="18" font-size="14">{escape(title)}</text>')
    for t in _ticks(x_lo, x_hi):
        out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y_lo, y_hi):
        out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + plot_w}" y2="{py(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14,{top + plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    models = list(dict.fromkeys(label.split(" seed ")[0] for label in points))
    for i, (label, pts) in enumerate(points.items()):
        colour = PALETTE[models.index(label.split(" seed ")[0]) % len(PALETTE)]
        seeds_before = sum(1 for other in list(points)[:i] if other.split(" seed ")[0] == label.split(" seed ")[0])
        dash = DASHES[seeds_before % len(DASHES)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        legend_y = top + 14 + 18 * i
        out.append(f'<line x1="{left + plot_w + 12}" y1="{legend_y - 4}" x2="{left + plot_w + 36}" '
                   f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{left + plot_w + 42}" y="{legend_y}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
