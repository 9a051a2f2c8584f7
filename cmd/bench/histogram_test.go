package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistBucketsTile checks that the buckets cover every non-negative
// int64 without gap or overlap, and that each is at most 1/128 of its
// lower bound wide: the precision the report claims.
func TestHistBucketsTile(t *testing.T) {
	var next uint64
	for idx := range histBuckets {
		lo, hi := histBounds(idx)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", idx, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d is [%d, %d]", idx, lo, hi)
		}
		if width := hi - lo + 1; width > 1 && width > lo/histSub {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its start", idx, lo, hi, histSub)
		}
		if histIndex(lo) != idx || histIndex(hi) != idx {
			t.Fatalf("bucket %d: bounds map to %d and %d", idx, histIndex(lo), histIndex(hi))
		}
		next = hi + 1
	}
	if next != 1<<63 {
		t.Fatalf("buckets end at %d, want 2^63", next)
	}
}

func histOf(ds ...time.Duration) *histogram {
	h := newHistogram()
	for _, d := range ds {
		h.record(d)
	}
	return h
}

func nsRange(from, to int) []time.Duration {
	var out []time.Duration
	for v := from; v <= to; v++ {
		out = append(out, time.Duration(v))
	}
	return out
}

func repeat(d time.Duration, n int) []time.Duration {
	return slices.Repeat([]time.Duration{d}, n)
}

// TestHistQuantiles checks exact answers on known inputs. Below 256ns every
// value has its own bucket; above, the answer is the top of the value's
// bucket (worked out by hand in the comments) clamped to the exact min and
// max.
func TestHistQuantiles(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                     string
		in                       []time.Duration
		min, mean, p50, p90, p99 time.Duration
		p999, max                time.Duration
	}{
		{name: "empty"},
		{"1..100ns", nsRange(1, 100), 1, 50, 50, 90, 99, 100, 100},
		{"1..1000ns", nsRange(1, 1000), 1, 500,
			// 500: len 9, shift 1, bucket [500, 501]; 900: len 10,
			// shift 2, [900, 903]; 990: [988, 991]; 999: [996, 999].
			501, 903, 991, 999, 1000},
		{"one value", []time.Duration{ms}, ms, ms, ms, ms, ms, ms, ms},
		{"1-4ms", []time.Duration{ms, 2 * ms, 3 * ms, 4 * ms}, ms, 2500 * time.Microsecond,
			// rank 2 is 2,000,000ns: shift 13, 244<<13 = 1,998,848, so the
			// bucket ends at 245<<13 - 1; ranks 4 are the max itself.
			2_007_039, 4 * ms, 4 * ms, 4 * ms, 4 * ms},
		{"tail", append(repeat(100*time.Microsecond, 1000), repeat(50*ms, 10)...),
			100 * time.Microsecond, (1000*100*time.Microsecond + 10*50*ms) / 1010,
			// 100,000ns: shift 9, 195<<9 = 99,840, bucket ends at 100,351.
			// p99 is rank 1000, still a 100µs record; p99.9 is rank 1009.
			100_351, 100_351, 100_351, 50 * ms, 50 * ms},
		{"zero", []time.Duration{0, 0}, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := histOf(tt.in...)
			got := []time.Duration{h.minimum(), h.mean(), h.quantile(0.5), h.quantile(0.9),
				h.quantile(0.99), h.quantile(0.999), h.maximum()}
			want := []time.Duration{tt.min, tt.mean, tt.p50, tt.p90, tt.p99, tt.p999, tt.max}
			if !slices.Equal(got, want) {
				t.Errorf("min, mean, p50, p90, p99, p99.9, max = %v, want %v", got, want)
			}
			if h.count() != uint64(len(tt.in)) {
				t.Errorf("count %d, want %d", h.count(), len(tt.in))
			}
		})
	}
}

// TestHistQuantileBound compares with exact nearest-rank quantiles of a
// sorted copy: the answer is never below the exact one and never more
// than 1/128 above it.
func TestHistQuantileBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHistogram()
	var all []time.Duration
	for range 20000 {
		// Log-uniform from 1µs to ~1s, as latencies spread.
		d := time.Duration(math.Exp(rng.Float64()*math.Log(1e6)) * 1000)
		h.record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.quantile(q)
		if got < exact || got-exact > exact/histSub {
			t.Errorf("q%g = %v, exact %v: outside [exact, exact·(1+1/%d)]", q, got, exact, histSub)
		}
	}
}

// TestHistMerge checks that merging per-client histograms gives what one
// histogram of every record would.
func TestHistMerge(t *testing.T) {
	a := histOf(3*time.Millisecond, 10, 7*time.Second)
	b := histOf(5*time.Microsecond, 2*time.Millisecond)
	merged := newHistogram()
	merged.merge(a)
	merged.merge(b)
	merged.merge(newHistogram()) // an idle client changes nothing
	merged.merge(nil)
	want := histOf(3*time.Millisecond, 10, 7*time.Second, 5*time.Microsecond, 2*time.Millisecond)
	if !slices.Equal(merged.counts, want.counts) || merged.n != want.n || merged.sum != want.sum ||
		merged.min != want.min || merged.max != want.max {
		t.Errorf("merged histogram differs from the histogram of all records")
	}
}

// TestHistRows checks the printed histogram's 1-2-5 rows on known input,
// with empty rows kept between the first and the last.
func TestHistRows(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name string
		in   []time.Duration
		want []histRow
	}{
		{"empty", nil, nil},
		{"spread", append(append(repeat(150*us, 3), 600*us), repeat(3*time.Millisecond, 2)...), []histRow{
			{100 * us, 200 * us, 3},
			{200 * us, 500 * us, 0},
			{500 * us, time.Millisecond, 1},
			{time.Millisecond, 2 * time.Millisecond, 0},
			{2 * time.Millisecond, 5 * time.Millisecond, 2},
		}},
		// 1000ns has a bucket [1000, 1003], so it counts in the row it
		// starts, and 999 in the row below.
		{"edge", []time.Duration{999, 1000}, []histRow{{500, 1000, 1}, {1000, 2000, 1}}},
		{"zero", []time.Duration{0, 1}, []histRow{{0, 2, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := histOf(tt.in...).rows()
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEdgeLabels(t *testing.T) {
	tests := []struct {
		k    int
		ns   uint64
		want string
	}{
		{0, 1, "1ns"}, {1, 2, "2ns"}, {2, 5, "5ns"}, {3, 10, "10ns"},
		{9, 1000, "1µs"}, {17, 500_000, "500µs"}, {18, 1_000_000, "1ms"},
		{22, 20_000_000, "20ms"}, {27, 1_000_000_000, "1s"}, {29, 5_000_000_000, "5s"},
	}
	for _, tt := range tests {
		if got := edge125(tt.k); got != tt.ns {
			t.Errorf("edge125(%d) = %d, want %d", tt.k, got, tt.ns)
		}
		if got := row125(tt.ns); got != tt.k {
			t.Errorf("row125(%d) = %d, want %d", tt.ns, got, tt.k)
		}
		if got := edgeLabel(time.Duration(tt.ns)); got != tt.want {
			t.Errorf("edgeLabel(%d) = %q, want %q", tt.ns, got, tt.want)
		}
	}
	if got := row125(math.MaxInt64); edge125(got) > math.MaxInt64 {
		t.Errorf("the row of the largest duration has edge %d", edge125(got))
	}
}

// TestHistRecordAllocs: recording sits in the hot loop and must not
// allocate.
func TestHistRecordAllocs(t *testing.T) {
	h := newHistogram()
	if n := testing.AllocsPerRun(1000, func() { h.record(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("record allocates %v times", n)
	}
}
