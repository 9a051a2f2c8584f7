package main

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear in the manner of HdrHistogram: every power of
// two is split into histSub equal buckets, so a recorded latency is known to
// within 1/histSub (0.8%) of its value whatever its magnitude, and recording
// is a shift and an add. Values below 2*histSub ns are kept exactly.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histBuckets covers every non-negative int64: the largest value has
	// bits.Len64 == 63, hence shift 55 and an index below 57*histSub.
	histBuckets = (64 - histSubBits) * histSub
)

// histogram records latencies in nanoseconds. It never allocates after
// newHistogram, so a client can record into its own one in the hot loop and
// the histograms are merged once the run is over.
type histogram struct {
	counts []uint64
	n      uint64
	sum    uint64 // ns; overflows only after 584 years of latency
	min    uint64
	max    uint64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxUint64}
}

// histIndex is the bucket of v: the top histSubBits+1 significant bits of v
// and how far they were shifted.
func histIndex(v uint64) int {
	shift := bits.Len64(v) - histSubBits - 1
	if shift < 0 {
		shift = 0
	}
	return shift*histSub + int(v>>uint(shift))
}

// histBounds is the smallest and largest value that histIndex maps to idx.
func histBounds(idx int) (lo, hi uint64) {
	shift := idx/histSub - 1
	if shift < 0 {
		shift = 0
	}
	sub := uint64(idx - shift*histSub)
	return sub << uint(shift), (sub+1)<<uint(shift) - 1
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	h.n++
	h.sum += v
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// recordN records d n times.
func (h *histogram) recordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	v := uint64(max(d, 0))
	h.counts[histIndex(v)] += n
	h.n += n
	h.sum += v * n
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds o's records to h.
func (h *histogram) merge(o *histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

func (h *histogram) count() uint64 { return h.n }

func (h *histogram) minimum() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

func (h *histogram) maximum() time.Duration { return time.Duration(h.max) }

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
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := histBounds(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max) // unreachable while n matches the counts
}
