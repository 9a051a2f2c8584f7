package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

// BenchmarkOverhead measures the generator against a handler that does
// nothing but answer 204, in the same process: the rate it reaches is an
// upper bound on what the generator (plus a minimal server) can drive, so
// a node measured well below it is not limited by the generator.
//
//	go test -run '^$' -bench Overhead -benchtime 200000x ./cmd/bench/
func BenchmarkOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, clients := range []int{1, 64} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			cfg := testConfig(cmdPut, uint64(b.N), srv.URL)
			cfg.clients = clients
			b.ReportAllocs()
			b.ResetTimer()
			res, err := runBench(context.Background(), cfg, zap.NewNop(), nil)
			if err != nil {
				b.Fatal(err)
			}
			if res.writes.ok() != uint64(b.N) {
				b.Fatalf("%d of %d acknowledged: %+v", res.writes.ok(), b.N, res.writes.n)
			}
			b.ReportMetric(float64(res.writes.ok())/res.elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(res.writes.lat.quantile(0.5))/float64(time.Microsecond), "p50-µs")
		})
	}
}
