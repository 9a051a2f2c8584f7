#!/usr/bin/env python3
"""Draws BENCHMARKS.md's watch chart from the CSV scripts/coord-bench.sh
writes: write throughput, and the p99 and p99.9 delay from a write's
acknowledgement to its delivery, against the number of watchers of the
writers' prefix (0, 1, 10, 100, 1000: evenly spaced, not to scale).

    python3 scripts/watch_svg.py watch.csv > docs/watch.svg
"""
import csv
import sys

from svgplot import W, panel, render


def main():
    with open(sys.argv[1]) as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    ticks = [(i, f"{r['watchers']:g}") for i, r in enumerate(rows)]
    for i, r in enumerate(rows):
        r["i"] = i
    at = lambda r: r["i"]
    watched = [r for r in rows if r["watchers"] > 0]
    print(render([
        panel(0, "PUT throughput (64 clients)", "watchers", "writes/s", [("writes/s", rows)], at,
              lambda r: r["put_per_s"], xticks=ticks),
        panel(W, "Acknowledgement to delivery", "watchers", "ms",
              [("p99", watched, lambda r: r["delay_p99_ms"]), ("p99.9", watched, lambda r: r["delay_p999_ms"])],
              at, None, xticks=ticks),
    ]))


if __name__ == "__main__":
    main()
