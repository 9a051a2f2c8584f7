package main

import "time"

// histRow is one line of the printed histogram: the records with latency in
// [from, to).
type histRow struct {
	from, to time.Duration
	count    uint64
}

// edge125 is the k-th edge of the 1-2-5 series in nanoseconds: 1, 2, 5, 10,
// 20, 50, … Such edges are log-spaced like the histogram but read as round
// numbers (200µs, 500µs, 1ms), which power-of-two edges would not.
func edge125(k int) uint64 {
	e := [3]uint64{1, 2, 5}[k%3]
	for range k / 3 {
		e *= 10
	}
	return e
}

// row125 is the k of the 1-2-5 interval that holds v.
func row125(v uint64) int {
	k := 0
	// 19 decades of nanoseconds exceed any int64 duration; stopping there
	// keeps edge125 from overflowing.
	for k+1 < 3*19 && edge125(k+1) <= v {
		k++
	}
	return k
}

// rows groups the records into 1-2-5 intervals, from the first interval that
// holds a record to the last; intervals in between are kept even when empty
// so that the printed shape is not distorted. A bucket counts towards the
// interval of its lower bound (raised to the exact minimum), so a record
// within 0.8% above an edge may be shown one row low.
func (h *histogram) rows() []histRow {
	if h.n == 0 {
		return nil
	}
	counts := make(map[int]uint64)
	first, last := -1, -1
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, _ := histBounds(i)
		k := row125(max(lo, h.min))
		counts[k] += c
		if first < 0 {
			first = k
		}
		last = max(last, k)
	}
	out := make([]histRow, 0, last-first+1)
	for k := first; k <= last; k++ {
		from := edge125(k)
		if k == 0 {
			from = 0 // the first interval also holds a latency of 0
		}
		out = append(out, histRow{
			from:  time.Duration(from),
			to:    time.Duration(edge125(k + 1)),
			count: counts[k],
		})
	}
	return out
}
