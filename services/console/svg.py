"""Pictures drawn on the server as SVG: vote traffic over time, intake against caps.

SVG text is built here and returned as ``Markup``; every label is escaped.
Each picture has a ``<title>`` and a ``<desc>`` that a screen reader reads,
and the page shows the same numbers as a table beside it.
"""
from markupsafe import Markup, escape

PALETTE = ("#b71c1c", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037")


def _nice_max(value):
    """A round top for the y axis (1, 2, 5 × 10ⁿ) at or above ``value``."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def line_chart(chart_id, title, labels, series, width=720, height=260):
    """Lines of counts over time. ``labels`` name the x positions; ``series`` is
    ``[(name, [count per label])]``. Returns the SVG as ``Markup``."""
    left, right, top, bottom = 48, 36, 12, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((max(values) for _, values in series if values), default=0))
    count = max(len(labels), 1)

    def x(index):
        return left + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value):
        return top + plot_h - plot_h * value / peak

    total = sum(sum(values) for _, values in series)
    summary = "；".join(f"{name}共{sum(values)}票" for name, values in series) or "暂无投票"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(summary)}（合计{total}票）</desc>']
    for tick in (0, peak / 2, peak):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'class="tick">{int(tick) if tick == int(tick) else tick}</text>')
    every = max(1, count // 6)
    for index, label in enumerate(labels):
        if index % every == 0 or index == count - 1:
            parts.append(f'<text x="{x(index):.1f}" y="{height - bottom + 16}" '
                         f'text-anchor="middle" class="tick">{escape(label)}</text>')
    for number, (name, values) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        if len(values) == 1:
            parts.append(f'<circle cx="{x(0):.1f}" cy="{y(values[0]):.1f}" r="4" '
                         f'fill="{colour}" data-series="{escape(name)}"/>')
        elif values:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                         f'stroke-width="2.5" data-series="{escape(name)}"/>')
    for number, (name, _) in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        lx = left + (number % 3) * 220
        ly = height - 10
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{lx + 16}" y="{ly + 2}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def intake_bars(chart_id, title, bars, width=720):
    """One bar per cap: ``[(label, used, cap)]``; ``cap`` None means no cap (drawn open).
    A full cap is drawn in red, so "机关 20/20" is seen before it is read."""
    row_h, left, right = 34, 170, 90
    height = row_h * max(len(bars), 1) + 8
    plot_w = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" id="{escape(chart_id)}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             '<desc id="{0}-d">{1}</desc>'.format(escape(chart_id), escape("；".join(
                 f"{label}{used}/{cap}" if cap else f"{label}{used}（不限）"
                 for label, used, cap in bars)))]
    for index, (label, used, cap) in enumerate(bars):
        top = 4 + index * row_h
        scale = cap if cap else max(used, 1)
        filled = plot_w * min(used, scale) / scale if scale else 0
        full = bool(cap) and used >= cap
        parts.append(f'<text x="{left - 8}" y="{top + 20}" text-anchor="end" '
                     f'class="label">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{top + 4}" width="{plot_w}" height="22" '
                     f'class="track{" open" if not cap else ""}"/>')
        parts.append(f'<rect x="{left}" y="{top + 4}" width="{filled:.1f}" height="22" '
                     f'class="fill{" full" if full else ""}"/>')
        text = f"{used}/{cap}" if cap else f"{used}（不限）"
        parts.append(f'<text x="{left + plot_w + 8}" y="{top + 20}" class="value">'
                     f'{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
