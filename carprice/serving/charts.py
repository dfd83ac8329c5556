"""Small SVG charts drawn on the server: the market page needs no chart library, script or network."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

# A colour per series, told apart in print and by most colour-blind readers (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH, HEIGHT, MARGIN = 640, 320, (20, 20, 40, 70)  # top, right, bottom, left


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= n)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _label(value: float) -> str:
    return f"{value / 1000:g}k" if abs(value) >= 10_000 else f"{value:g}"


def chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, x_label: str, y_label: str,
          lines: bool = False, y_percent: bool = False, x_format: Callable[[float], str] | None = None) -> str:
    """An SVG scatter (or line) chart of named series of (x, y) points, with axes, ticks and a legend
    (``x_format``: the x ticks' text, e.g. a day number as its date)."""
    points = [p for values in series.values() for p in values]
    if not points:
        return f'<p class="empty">{escape(title)}: no data in the snapshot yet</p>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 if max(ys) > 0 else 1.0
    top, right, bottom, left = MARGIN
    w, h = WIDTH - left - right, HEIGHT - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 20 * len(series)}" '
             f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" class="axis"/>']
    for t in _ticks(x0, x1):
        text = escape(x_format(t)) if x_format else _label(t)
        parts.append(f'<text x="{sx(t):.1f}" y="{top + h + 16}" class="tick" text-anchor="middle">{text}</text>')
    for t in _ticks(y0, y1):
        text = f"{t:.0%}" if y_percent else _label(t)
        parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + w}" y2="{sy(t):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{text}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{HEIGHT - 6}" class="label" text-anchor="middle">'
                 f'{escape(x_label)}</text><text x="14" y="{top + h / 2}" class="label" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + h / 2})">{escape(y_label)}</text>')
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(values)
        if lines and len(ordered) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        radius = 3 if lines else 2
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{radius}" fill="{colour}" fill-opacity="0.6"/>'
                  for x, y in ordered]
        parts.append(f'<rect x="{left}" y="{HEIGHT + 20 * i + 4}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + 18}" y="{HEIGHT + 20 * i + 14}" class="tick">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def price_range(lower: float, predicted: float, upper: float, asking: float | None, currency: str = "EUR") -> str:
    """A bar over the 90% interval with the typical price and, when given, the asking price marked (in
    ``currency``)."""
    lo = min(lower, asking or lower) * 0.9
    hi = max(upper, asking or upper) * 1.1
    w, pad = 600, 20

    def sx(x: float) -> float:
        return pad + (x - lo) / (hi - lo) * (w - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} 90" class="range" role="img" '
             f'aria-label="price range">',
             f'<rect x="{sx(lower):.1f}" y="30" width="{sx(upper) - sx(lower):.1f}" height="18" rx="9" '
             f'class="interval"/>',
             f'<text x="{sx(lower):.1f}" y="66" text-anchor="middle" class="tick">{lower:,.0f} {currency}</text>',
             f'<text x="{sx(upper):.1f}" y="66" text-anchor="middle" class="tick">{upper:,.0f} {currency}</text>',
             f'<line x1="{sx(predicted):.1f}" y1="24" x2="{sx(predicted):.1f}" y2="54" class="typical"/>',
             f'<text x="{sx(predicted):.1f}" y="18" text-anchor="middle" class="tick">'
             f'typical {predicted:,.0f} {currency}</text>']
    if asking is not None:
        parts += [f'<polygon points="{sx(asking) - 7:.1f},86 {sx(asking) + 7:.1f},86 {sx(asking):.1f},72" '
                  f'class="asking"/>',
                  f'<text x="{sx(asking) + 10:.1f}" y="86" class="tick">asking {asking:,.0f} {currency}</text>']
    return "".join(parts) + "</svg>"
