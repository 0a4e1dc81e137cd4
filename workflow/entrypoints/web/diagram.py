"""The lifecycle diagram as inline SVG, drawn on the server from :data:`states.TRANSITIONS`
(no script library: the machines may have no internet).

States stack top to bottom in :data:`states.STATES` order; forward edges run down the middle,
backward edges (reopen, withdraw, return, revoke) curve out to the right, each further out the
more states it skips. The current state is filled and marked 当前.
"""

from __future__ import annotations

from html import escape

import states

BOX_X, BOX_W, BOX_H, GAP = 20, 170, 40, 56
WIDTH = 440


def _y(index: int) -> int:
    return 16 + index * (BOX_H + GAP)


def lifecycle_svg(current: str | None = None) -> str:
    """Return an ``<svg>`` element (a string, safe to embed) with ``current`` highlighted."""
    order = {s: i for i, s in enumerate(states.STATES)}
    height = _y(len(states.STATES) - 1) + BOX_H + 16
    parts = [
        f'<svg class="lifecycle" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="记录生命周期图" xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    for t in states.TRANSITIONS:
        a, b = order[t.source], order[t.dest]
        label = escape(t.label)
        who = "上级" if t.scope == states.PARENT else ""
        if b == a + 1:
            x = BOX_X + BOX_W // 2
            y1, y2 = _y(a) + BOX_H, _y(b)
            parts.append(f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2 - 2}" stroke="#555" '
                         f'stroke-width="1.5" marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{x + 8}" y="{(y1 + y2) // 2 + 5}" class="edge">{label}'
                         f'{"（" + who + "）" if who else ""}</text>')
        else:
            # Edges of one span never overlap vertically, so the span alone sets the offset.
            offset = 40 + (abs(a - b) - 1) * 75
            x0 = BOX_X + BOX_W
            y1, y2 = _y(a) + BOX_H // 2 + 6, _y(b) + BOX_H // 2 - 6
            cx = x0 + offset
            parts.append(f'<path d="M{x0},{y1} C{cx},{y1} {cx},{y2} {x0 + 2},{y2}" fill="none" '
                         f'stroke="#8a5a00" stroke-width="1.3" stroke-dasharray="4 3" marker-end="url(#arrow)"/>')
            parts.append(f'<text x="{x0 + offset * 3 // 4 - 4}" y="{(y1 + y2) // 2 + 5}" class="edge back">'
                         f'{label}</text>')
    for s, i in order.items():
        y = _y(i)
        is_current = s == current
        cls = "state current" if is_current else "state"
        parts.append(f'<g class="{cls}"><rect x="{BOX_X}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
                     f'<text x="{BOX_X + BOX_W // 2}" y="{y + 26}" text-anchor="middle">'
                     f'{escape(states.STATE_LABELS[s])}{"（当前）" if is_current else ""}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


BAR_LABEL_W, BAR_W, BAR_H, BAR_GAP = 190, 360, 14, 12


def bars_svg(rows: list[tuple[str, float, float]], *, caption: str) -> str:
    """A horizontal bar chart as an ``<svg>`` element (safe to embed): per row, its label, the
    90th percentile as a pale bar and the median as a dark one over it, both in days."""
    top = max((p90 for _l, _m, p90 in rows), default=0.0) or 1.0
    row_h = 2 * BAR_H + BAR_GAP
    height = 30 + len(rows) * row_h + 10
    width = BAR_LABEL_W + BAR_W + 90
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(caption)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{BAR_LABEL_W}" y="6" width="12" height="10" fill="#1f5f9e"/>'
        f'<text x="{BAR_LABEL_W + 16}" y="15" class="legend">中位数</text>'
        f'<rect x="{BAR_LABEL_W + 80}" y="6" width="12" height="10" fill="#a9c6e8"/>'
        f'<text x="{BAR_LABEL_W + 96}" y="15" class="legend">90%</text>',
    ]
    for i, (label, median, p90) in enumerate(rows):
        y = 30 + i * row_h
        wm, wp = round(BAR_W * median / top), round(BAR_W * p90 / top)
        parts.append(
            f'<g class="bar"><text x="{BAR_LABEL_W - 8}" y="{y + BAR_H + 4}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{BAR_LABEL_W}" y="{y}" width="{wp}" height="{BAR_H}" fill="#a9c6e8"/>'
            f'<text x="{BAR_LABEL_W + wp + 6}" y="{y + BAR_H - 3}" class="value">{p90:g} 天</text>'
            f'<rect x="{BAR_LABEL_W}" y="{y + BAR_H}" width="{wm}" height="{BAR_H}" fill="#1f5f9e"/>'
            f'<text x="{BAR_LABEL_W + wm + 6}" y="{y + 2 * BAR_H - 3}" class="value">{median:g} 天</text></g>')
    parts.append("</svg>")
    return "".join(parts)
