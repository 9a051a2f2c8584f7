package metrics

import "github.com/prometheus/client_golang/prometheus"

// Watch is the metrics of the watch hub and its streams (package watch).
type Watch struct {
	Watchers     prometheus.Gauge   // watches open, catching up or live
	EventsSent   prometheus.Counter // revisions handed to the streams' writers
	Overflows    prometheus.Counter // watches ended because their client fell behind
	CatchUpReads prometheus.Counter // reads of the db's history by streams catching up
}

func newWatch(f factory) Watch {
	return Watch{
		Watchers:     f.gauge("watch", "watchers", "Watches open on this member, catching up or live."),
		EventsSent:   f.counter("watch", "events_sent_total", "Revisions (one SSE event each, with every change of the revision the watch takes) handed to watch streams."),
		Overflows:    f.counter("watch", "overflows_total", "Watches ended because their client did not read fast enough (reason overflow)."),
		CatchUpReads: f.counter("watch", "catch_up_reads_total", "Reads of the db's history by watches catching up from a past revision."),
	}
}
