"""Line charts as hand-written SVG, for the benchmark scripts: no plotting
library, so the scripts run on any Python 3.

A chart is panels side by side; a panel draws series, each a name and
rows, with x and y read from a row by functions. X ticks are either evenly
spaced values up to the axis' top, or given labels at given positions.
"""
import math

W, H, PAD = 420, 260, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def nice(v):
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above v."""
    p = 10 ** math.floor(math.log10(v))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= v)


def panel(x0, title, xlabel, ylabel, series, xof, yof, xticks=None, xscale=1):
    """One panel at horizontal offset x0. A series is (name, rows), or
    (name, rows, its own yof). xticks, when given, is a list of (x, label);
    otherwise five ticks up to the axis' top, divided by xscale for their
    labels."""
    series = [(s[0], s[1], s[2] if len(s) > 2 else yof) for s in series]
    xs = [xof(r) for _, rows, _ in series for r in rows]
    ys = [f(r) for _, rows, f in series for r in rows]
    xmax = max(x for x, _ in xticks) if xticks else nice(max(xs))
    ymax = nice(max(ys) or 1)
    def px(x): return x0 + PAD + (W - 2 * PAD) * x / xmax
    def py(y): return H - PAD - (H - 2 * PAD) * y / ymax
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="black"/>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(ymax)}" stroke="black"/>',
           f'<text x="{x0 + W / 2}" y="{H - 10}" text-anchor="middle">{xlabel}</text>',
           f'<text x="{x0 + 14}" y="{H / 2}" text-anchor="middle" transform="rotate(-90 {x0 + 14} {H / 2})">{ylabel}</text>']
    ticks = xticks or [(xmax * i / 4, f"{xmax * i / 4 / xscale:g}") for i in range(5)]
    for x, label in ticks:
        out.append(f'<text x="{px(x)}" y="{py(0) + 15}" text-anchor="middle" font-size="10">{label}</text>')
    for i in range(5):
        y = ymax * i / 4
        out.append(f'<text x="{px(0) - 5}" y="{py(y) + 3}" text-anchor="end" font-size="10">{y:g}</text>')
    for n, (name, rows, f) in enumerate(series):
        pts = " ".join(f"{px(xof(r)):.1f},{py(f(r)):.1f}" for r in rows)
        c = COLORS[n % len(COLORS)]
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{px(xmax) - 5}" y="{40 + 14 * n}" text-anchor="end" fill="{c}" font-size="12">{name}</text>')
    return out


def render(panels):
    """The SVG document of the panels (each a list of elements)."""
    parts = [p for panel_parts in panels for p in panel_parts]
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{len(panels) * W}" height="{H}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>', *parts, "</svg>"])
