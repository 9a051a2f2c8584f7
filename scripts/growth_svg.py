#!/usr/bin/env python3
"""Draws BENCHMARKS.md's growth chart from the CSV files scripts/growth.sh
writes: resident memory per member (the mean of the three, anonymous RSS)
and p99.9 latency, against the keys held, one line per binary.

    python3 scripts/growth_svg.py bbolt=new.csv map=old.csv > docs/growth.svg
"""
import csv
import sys

from svgplot import W, panel, render


def read(path):
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main():
    series = []
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        series.append((name, read(path)))
    keys = lambda r: r["keys"]
    mem = lambda r: (r["rss1_mb"] + r["rss2_mb"] + r["rss3_mb"]) / 3
    print(render([
        panel(0, "Anonymous RSS per member", "keys (millions)", "MB", series, keys, mem, xscale=1e6),
        panel(W, "p99.9 PUT latency (64 clients)", "keys (millions)", "ms", series, keys, lambda r: r["p999_ms"], xscale=1e6),
    ]))


if __name__ == "__main__":
    main()
