"""Inline SVG charts (no script, no external file): stacked histograms with their thresholds drawn as dashed
lines, and horizontal bar charts (shares, waterfalls, counts per tag).

Charts are strings built from numbers and escaped labels, deterministic to the byte, so two reports on the
same runs can be diffed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roots.report.fmt import fmt_num
from roots.report.markup import esc

HIST_BINS = 24  # bars per histogram
_SVG_W, _SVG_H = 300, 150
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 34, 16, 20, 26
_FAR = 10.0  # a threshold more than this many times the largest value is noted, not drawn to scale


def axis_value(values: np.ndarray, log: bool) -> np.ndarray:
    """Where values fall on a chart's axis: log10(1 + x) on a log scale (word counts, perplexity), else x.
    Also the scale on which a document's distance to a threshold is measured."""
    return np.log10(1.0 + np.maximum(values, 0.0)) if log else values


def _nice_step(span: float) -> float:
    """A 1/2/2.5/5 x 10^k step giving at most 5 intervals over `span`, so tick labels read cleanly."""
    raw = span / 5
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _domain(values: np.ndarray, marks: Sequence[tuple[str, float]], log: bool, fixed_hi: float | None
            ) -> tuple[float, list[float], list[tuple[str, float]], list[tuple[str, float]]]:
    """(axis maximum, ticks, thresholds drawn on the axis, thresholds too far right to draw to scale).

    The axis covers the data and every threshold near it, so a threshold is visible on its chart; a bound
    like `number_words_max: 100000` over documents of a few hundred words would squash the data into a
    corner, so it is written at the right edge instead."""
    top = float(np.max(values)) if len(values) else 0.0
    near = [(k, v) for k, v in marks if top <= 0 or v <= top * _FAR]
    far = [(k, v) for k, v in marks if (k, v) not in near]
    hi = fixed_hi if fixed_hi is not None else max([top, *(v for _, v in near), 0.0])
    if log:
        hi = max(hi * 1.05, 1.0)
        ticks, v = [0.0], 1.0
        while v <= hi:
            ticks.append(v)
            v *= 10
        step = max(1, math.ceil((len(ticks) - 1) / 4))
        return hi, [ticks[0], *ticks[1::step]], near, far
    if hi <= 0:
        hi = 1.0
    step = _nice_step(hi)
    hi = math.ceil(hi / step - 1e-9) * step  # values on the last edge fall into the last bin
    return hi, [i * step for i in range(round(hi / step) + 1)], near, far


def _x(value: float, t_hi: float, log: bool) -> float:
    position = float(axis_value(np.asarray([value], dtype=np.float64), log)[0])
    return _PAD_L + position / t_hi * (_SVG_W - _PAD_L - _PAD_R)


def _bins(values: np.ndarray, layers: Sequence[tuple[str, np.ndarray]], t_hi: float,
          log: bool) -> list[np.ndarray]:
    idx = np.clip((axis_value(values, log) / t_hi * HIST_BINS).astype(np.int64), 0, HIST_BINS - 1)
    return [np.bincount(idx[mask], minlength=HIST_BINS) for _, mask in layers]


def svg_histogram(title: str, values: np.ndarray, layers: Sequence[tuple[str, np.ndarray]], log: bool,
                  marks: Sequence[tuple[str, float]], fixed_hi: float | None = None) -> str:
    """A stacked histogram (one layer per class of document) with its thresholds drawn as dashed lines.

    `values` are the statistic of every document with a value; each layer is a boolean mask over them.
    Layer counts go into the `<title>` so a reader can hover for exact numbers.
    """
    sizes = ", ".join(f"{cls} {int(mask.sum())}" for cls, mask in layers)
    parts = [(f'<svg class="chart" viewBox="0 0 {_SVG_W} {_SVG_H}" width="{_SVG_W}" height="{_SVG_H}" '
             f'role="img"><title>{esc(title)} ({esc(sizes)})</title>'
             f'<text x="{_PAD_L}" y="12" class="ct">{esc(title)}</text>')]
    ph = _SVG_H - _PAD_T - _PAD_B
    base = _PAD_T + ph
    if not len(values):
        parts.append(f'<text x="{_SVG_W // 2}" y="{_PAD_T + ph // 2}" class="na">no values</text>')
        parts.extend(f'<text class="tl" x="{_SVG_W - _PAD_R}" y="{_PAD_T + 8 + 10 * i}" text-anchor="end">'
                     f"{esc(k)} {esc(fmt_num(v))}</text>" for i, (k, v) in enumerate(marks))
        return "".join(parts) + "</svg>"
    hi, ticks, near, far = _domain(values, marks, log, fixed_hi)
    t_hi = float(axis_value(np.asarray([hi]), log)[0])
    counts = _bins(values, layers, t_hi, log)
    ymax = max(1, int(np.max(np.sum(counts, axis=0))))
    bw = (_SVG_W - _PAD_L - _PAD_R) / HIST_BINS
    for b in range(HIST_BINS):
        y = float(base)
        for (cls, _), c in zip(layers, counts):
            if c[b]:
                h = c[b] / ymax * ph
                y -= h
                parts.append(f'<rect class="{cls}" x="{_PAD_L + b * bw:.1f}" y="{y:.1f}" '
                             f'width="{bw - 0.6:.1f}" height="{h:.1f}"/>')
    parts.append(f'<line class="ax" x1="{_PAD_L}" y1="{base}" x2="{_SVG_W - _PAD_R}" y2="{base}"/>'
                 f'<text x="{_PAD_L - 3}" y="{_PAD_T + 8}" class="yl">{ymax}</text>'
                 f'<text x="{_PAD_L - 3}" y="{base}" class="yl">0</text>')
    parts.extend(f'<text x="{_x(tick, t_hi, log):.1f}" y="{base + 12}" class="xl">{esc(fmt_num(tick))}</text>'
                 for tick in ticks)
    for i, (kind, value) in enumerate(near):
        x = _x(value, t_hi, log)
        anchor, dx = ("end", -3) if x > _PAD_L + (_SVG_W - _PAD_L) * 0.6 else ("start", 3)
        parts.append(f'<line class="thr" x1="{x:.1f}" y1="{_PAD_T - 2}" x2="{x:.1f}" y2="{base}"/>'
                     f'<text class="tl" x="{x + dx:.1f}" y="{_PAD_T + 8 + 10 * i}" text-anchor="{anchor}">'
                     f"{esc(kind)} {esc(fmt_num(value))}</text>")
    for i, (kind, value) in enumerate(far, start=len(near)):
        parts.append(f'<text class="tl thr-far" x="{_SVG_W - _PAD_R}" y="{_PAD_T + 8 + 10 * i}" '
                     f'text-anchor="end">{esc(kind)} {esc(fmt_num(value))} →</text>')
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: segments (start, end, css class) and a note on the right."""

    label: str
    segments: tuple[tuple[float, float, str], ...]
    note: str = ""


def svg_bars(title: str, bars: Sequence[Bar], label_w: int = 190, width: int = 720) -> str:
    """Horizontal bars: stacked shares per source, a waterfall (offset segments) or counts per tag."""
    row_h, top = 18, 22
    height = top + row_h * max(1, len(bars)) + 6
    scale_max = max([end for b in bars for _, end, _ in b.segments] + [1.0])
    plot_w = width - label_w - 150
    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
              'role="img">'
             f'<title>{esc(title)}</title><text x="4" y="14" class="ct">{esc(title)}</text>')]
    for i, bar in enumerate(bars):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" class="bl">{esc(bar.label)}</text>')
        for start, end, cls in bar.segments:
            if end <= start:
                continue
            x0 = label_w + start / scale_max * plot_w
            w = max(0.8, (end - start) / scale_max * plot_w)
            parts.append(f'<rect class="{cls}" x="{x0:.1f}" y="{y + 2}" width="{w:.1f}" '
                         f'height="{row_h - 5}"/>')
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 12}" class="bn">{esc(bar.note)}</text>')
    parts.append("</svg>")
    return "".join(parts)
