#!/usr/bin/env python3
"""Draws BENCHMARKS.md's growth chart from the CSV files scripts/growth.sh
writes: resident memory per member (the mean of the three, anonymous RSS)
and p99.9 latency, against the keys held, one line per binary.

    python3 scripts/growth_svg.py bbolt=new.csv map=old.csv > docs/growth.svg

No plotting library: the SVG is written by hand, so the script runs on any
Python 3.
"""
import csv
import math
import sys

W, H, PAD = 420, 260, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def read(path):
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def nice(v):
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above v."""
    p = 10 ** math.floor(math.log10(v))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= v)


def panel(x0, title, ylabel, series, yof):
    xs = [r["keys"] for _, rows in series for r in rows]
    ys = [yof(r) for _, rows in series for r in rows]
    xmax, ymax = nice(max(xs)), nice(max(ys) or 1)
    def px(x): return x0 + PAD + (W - 2 * PAD) * x / xmax
    def py(y): return H - PAD + 0 - (H - 2 * PAD) * y / ymax
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="black"/>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(ymax)}" stroke="black"/>',
           f'<text x="{x0 + W / 2}" y="{H - 10}" text-anchor="middle">keys (millions)</text>',
           f'<text x="{x0 + 14}" y="{H / 2}" text-anchor="middle" transform="rotate(-90 {x0 + 14} {H / 2})">{ylabel}</text>']
    for i in range(5):
        x, y = xmax * i / 4, ymax * i / 4
        out.append(f'<text x="{px(x)}" y="{py(0) + 15}" text-anchor="middle" font-size="10">{x / 1e6:g}</text>')
        out.append(f'<text x="{px(0) - 5}" y="{py(y) + 3}" text-anchor="end" font-size="10">{y:g}</text>')
    for n, (name, rows) in enumerate(series):
        pts = " ".join(f"{px(r['keys']):.1f},{py(yof(r)):.1f}" for r in rows)
        c = COLORS[n % len(COLORS)]
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{px(xmax) - 5}" y="{40 + 14 * n}" text-anchor="end" fill="{c}" font-size="12">{name}</text>')
    return out


def main():
    series = []
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        series.append((name, read(path)))
    mem = lambda r: (r["rss1_mb"] + r["rss2_mb"] + r["rss3_mb"]) / 3
    parts = panel(0, "Anonymous RSS per member", "MB", series, mem)
    parts += panel(W, "p99.9 PUT latency (64 clients)", "ms", series, lambda r: r["p999_ms"])
    print(f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" font-family="sans-serif" font-size="12">')
    print('<rect width="100%" height="100%" fill="white"/>')
    print("\n".join(parts))
    print("</svg>")


if __name__ == "__main__":
    main()
