package metrics

import "github.com/prometheus/client_golang/prometheus"

// newRestarts is raftkv_actor_restarts_total, by actor: the raft, kv and
// snapshotter actors by their names, and "peer" for the transport's peer
// actors (with their pipeline and stream children, which restart with
// them). Peers share one label value: member ids are random 64-bit numbers
// that come and go with membership changes, so a series per peer would
// outlive its member, and the restart's log line names the peer.
func newRestarts(f factory) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "actor", Name: "restarts_total",
		Help: "Actors restarted after a panic, by actor; past its restart budget an actor stops the member instead.",
	}, []string{"actor"})
	f.register(c)
	return c
}
