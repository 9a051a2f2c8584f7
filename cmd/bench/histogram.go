package main

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear in the manner of HdrHistogram: every power of
// two is split into histSub equal buckets, so a latency is known to within
// 1/histSub (0.8%) of its value whatever its magnitude, and recording is a
// shift and an add. It never allocates after newHistogram, so every client
// records into its own in the hot loop, merged after the run. (The
// HdrHistogram library is not a dependency of the module, and its
// quantiles would not be those the reports have always printed.)
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub // every non-negative int64: shift ≤ 55
)

type histogram struct {
	counts           []uint64
	n, sum, min, max uint64 // in ns; the sum overflows after 584 years of latency
}

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxUint64}
}

// histIndex is the bucket of v: its top histSubBits+1 significant bits, and
// how far they were shifted. Values below 2*histSub are kept exactly.
func histIndex(v uint64) int {
	shift := max(bits.Len64(v)-histSubBits-1, 0)
	return shift*histSub + int(v>>shift)
}

// histBounds is the smallest and largest value that histIndex maps to idx.
func histBounds(idx int) (lo, hi uint64) {
	shift := max(idx/histSub-1, 0)
	sub := uint64(idx - shift*histSub)
	return sub << shift, (sub+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) { h.recordN(d, 1) }

func (h *histogram) recordN(d time.Duration, n uint64) {
	if n > 0 {
		v := uint64(max(d, 0))
		h.counts[histIndex(v)] += n
		h.n, h.sum, h.min, h.max = h.n+n, h.sum+v*n, min(h.min, v), max(h.max, v)
	}
}

func (h *histogram) merge(o *histogram) {
	if o != nil && o.n > 0 {
		for i, c := range o.counts {
			h.counts[i] += c
		}
		h.n, h.sum, h.min, h.max = h.n+o.n, h.sum+o.sum, min(h.min, o.min), max(h.max, o.max)
	}
}

func (h *histogram) count() uint64          { return h.n }
func (h *histogram) maximum() time.Duration { return time.Duration(h.max) }
func (h *histogram) minimum() time.Duration { return time.Duration(min(h.min, h.max)) } // 0 when empty

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// quantile returns the latency below or at which q (0 < q ≤ 1) of the
// records lie, by the nearest-rank method: the ceil(q·n)-th smallest record.
// The answer is the largest value of that record's bucket, clamped to the
// exact min and max, so it never understates a latency by the bucketing.
func (h *histogram) quantile(q float64) time.Duration {
	rank := min(max(uint64(math.Ceil(q*float64(h.n))), 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank && h.n > 0 {
			_, hi := histBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return 0
}

// histRow is one line of the printed histogram: the records in [from, to).
type histRow struct {
	from, to time.Duration
	count    uint64
}

// edge125 is the k-th edge of the 1-2-5 series in nanoseconds: 1, 2, 5, 10,
// 20, 50, … Such edges are log-spaced like the buckets but read as round
// numbers (200µs, 500µs, 1ms), which powers of two would not.
func edge125(k int) uint64 {
	return [3]uint64{1, 2, 5}[k%3] * uint64(math.Pow10(k/3))
}

// row125 is the k of the 1-2-5 interval that holds v; 19 decades of
// nanoseconds hold every int64 and keep edge125 from overflowing.
func row125(v uint64) int {
	k := 0
	for k+1 < 3*19 && edge125(k+1) <= v {
		k++
	}
	return k
}

// rows groups the records into 1-2-5 intervals, from the first that holds
// a record to the last; empty ones in between are kept so that the shape
// is not distorted. A bucket counts towards the interval of its lower bound
// (raised to the exact minimum), so a record within 0.8% above an edge may
// be shown one row low.
func (h *histogram) rows() []histRow {
	counts, first, last := map[int]uint64{}, -1, -1
	for i, c := range h.counts {
		if c > 0 {
			lo, _ := histBounds(i)
			k := row125(max(lo, h.min))
			counts[k] += c
			if last = k; first < 0 {
				first = k
			}
		}
	}
	var out []histRow
	for k := first; k <= last && k >= 0; k++ {
		from := time.Duration(edge125(k))
		if k == 0 {
			from = 0 // the first interval also holds a latency of 0
		}
		out = append(out, histRow{from, time.Duration(edge125(k + 1)), counts[k]})
	}
	return out
}
