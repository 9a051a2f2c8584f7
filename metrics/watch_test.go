package metrics

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The watch metrics are registered under raftkv_watch_.
func TestWatchMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Watch.Watchers.Set(2)
	m.Watch.EventsSent.Inc()
	m.Watch.Overflows.Inc()
	m.Watch.CatchUpReads.Inc()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"raftkv_watch_watchers", "raftkv_watch_events_sent_total", "raftkv_watch_overflows_total", "raftkv_watch_catch_up_reads_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("no metric %s", want)
		}
	}
}
