// Package metrics holds a member's Prometheus metrics: one Node value per
// member, registered with the registry the caller gives (never the global
// one), and handed to each actor in its config. An actor given none makes an
// unregistered one (New(nil)), so tests need not build one.
//
// Names are raftkv_<subsystem>_<name>: raft (the raft actor), kv (the state
// machine), lease (its lessor), wal, snapshot, actor (every actor's message
// handling, and its restarts after a panic: restarts.go), watch (the watch
// hub and streams) and network (per peer and channel, read from the
// transport at scrape time); raftkv_build_info says which version runs
// (build.go).
package metrics

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "raftkv"

// Node is the metrics of one member.
type Node struct {
	// raft actor
	LeaderChanges    prometheus.Counter
	IsLeader         prometheus.Gauge
	Term             prometheus.Gauge
	ReadyEntries     prometheus.Histogram // entries to append per Ready
	ReadyMessages    prometheus.Histogram // messages per Ready
	CommittedEntries prometheus.Counter   // entries handed to the state machine
	ReadIndexRounds  prometheus.Counter   // read-index requests sent to raft (each serves a batch of reads)
	RefusedMessages  prometheus.Counter   // peer messages turned away before raft (they would make it panic)

	// kv actor
	Proposals        prometheus.Counter // writes and conf changes this member proposed
	ProposalsApplied prometheus.Counter // of those, applied and acknowledged
	ProposalsFailed  prometheus.Counter // of those, refused, dropped or timed out
	RefusedEntries   prometheus.Counter // committed commands refused when applied, for what they hold
	AppliedEntries   prometheus.Counter
	AppliedIndex     prometheus.Gauge
	Revision         prometheus.Gauge     // the store's revision
	HistoryEvents    prometheus.Gauge     // changes kept for watch resumes and past-revision reads
	HistoryCompacted prometheus.Gauge     // the newest revision the history no longer holds
	SnapshotEncode   prometheus.Histogram // encoding the state for a snapshot, on the kv actor's encoder

	// wal actor
	FsyncDuration prometheus.Histogram // one Save (write and fsync) of a group
	GroupSize     prometheus.Histogram // MsgStorageAppends sharing one Save

	// snapshotter actor
	SnapshotSave prometheus.Histogram // .snap file write and fsync

	// every actor
	MessageDuration *prometheus.HistogramVec // by actor
	Restarts        *prometheus.CounterVec   // by actor, after a panic (restarts.go)

	// watch hub and streams (watch.go)
	Watch Watch

	// the kv actor's lessor (lease.go)
	Lease Lease

	// what dashboards and alerts read first, as etcd's server gauges
	// (health.go)
	Health Health

	// BuildInfo is raftkv_build_info, always 1 (build.go).
	BuildInfo prometheus.Gauge
}

// New returns a member's metrics registered with reg. A nil reg leaves them
// unregistered: they count, but nobody can scrape them.
func New(reg prometheus.Registerer) *Node {
	f := factory{reg}
	return &Node{
		LeaderChanges:    f.counter("raft", "leader_changes_total", "Times this member saw the leader change, including to no leader."),
		IsLeader:         f.gauge("raft", "is_leader", "1 while this member is the leader."),
		Term:             f.gauge("raft", "term", "Current raft term."),
		ReadyEntries:     f.histogram("raft", "ready_entries", "Entries to append per Ready: how many proposals one fsync carries.", prometheus.ExponentialBuckets(1, 2, 12)),
		ReadyMessages:    f.histogram("raft", "ready_messages", "Messages per Ready.", prometheus.ExponentialBuckets(1, 2, 12)),
		CommittedEntries: f.counter("raft", "committed_entries_total", "Committed entries handed to the state machine."),
		ReadIndexRounds:  f.counter("raft", "read_index_rounds_total", "Read-index rounds; each confirms a batch of linearizable reads."),
		RefusedMessages:  f.counter("raft", "refused_messages_total", "Messages from peers turned away before raft, because raft would panic on them (a peer of another cluster or a corrupt message)."),

		Proposals:        f.counter("kv", "proposals_total", "Writes and membership changes proposed through this member."),
		ProposalsApplied: f.counter("kv", "proposals_applied_total", "Proposals through this member applied and acknowledged."),
		ProposalsFailed:  f.counter("kv", "proposals_failed_total", "Proposals through this member refused, dropped or timed out."),
		RefusedEntries:   f.counter("kv", "refused_entries_total", "Committed entries (or commands of a batch entry) refused when applied, for what they hold: nothing was written. Every member refuses the same ones."),
		AppliedEntries:   f.counter("kv", "applied_entries_total", "Log entries applied to the state machine."),
		AppliedIndex:     f.gauge("kv", "applied_index", "Index of the last applied entry."),
		Revision:         f.gauge("kv", "revision", "The store's revision: the index of the last entry that changed a key."),
		HistoryEvents:    f.gauge("kv", "history_events", "Changes the history holds for watch resumes and reads at a past revision."),
		HistoryCompacted: f.gauge("kv", "history_compacted_revision", "The newest revision the history no longer holds."),
		SnapshotEncode:   f.histogram("kv", "snapshot_encode_seconds", "Time to encode a frozen view of the state for a snapshot; applies go on meanwhile.", durationBuckets),

		FsyncDuration: f.histogram("wal", "fsync_duration_seconds", "Time to write and fsync one group of appends.", durationBuckets),
		GroupSize:     f.histogram("wal", "group_size", "Appends (Readys) written by one fsync.", prometheus.ExponentialBuckets(1, 2, 10)),

		SnapshotSave: f.histogram("snapshot", "save_duration_seconds", "Time to write and fsync a .snap file.", durationBuckets),

		MessageDuration: f.histogramVec("actor", "message_duration_seconds", "Time an actor spent handling one message.", durationBuckets, "actor"),
		Restarts:        newRestarts(f),

		Watch:  newWatch(f),
		Lease:  newLease(f),
		Health: newHealth(f),

		BuildInfo: newBuildInfo(f),
	}
}

// durationBuckets span 10 µs to about 20 s: an actor's message takes
// microseconds, an fsync a millisecond or more, a large snapshot seconds.
var durationBuckets = prometheus.ExponentialBuckets(10e-6, 4, 11)

type factory struct{ reg prometheus.Registerer }

func (f factory) register(c prometheus.Collector) {
	if f.reg != nil {
		f.reg.MustRegister(c)
	}
}

func (f factory) counter(sub, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help})
	f.register(c)
	return c
}

func (f factory) gauge(sub, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help})
	f.register(g)
	return g
}

func (f factory) histogram(sub, name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help, Buckets: buckets})
	f.register(h)
	return h
}

func (f factory) histogramVec(sub, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help, Buckets: buckets}, labels)
	f.register(h)
	return h
}

// middleware times every message actor name handles.
func (n *Node) middleware(name string) actor.ReceiverMiddleware {
	h := n.MessageDuration.WithLabelValues(name)
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			start := time.Now()
			next(c, env)
			h.Observe(time.Since(start).Seconds())
		}
	}
}

// PropsOptions returns the props options that time actor name's messages;
// none for a nil Node.
func (n *Node) PropsOptions(name string) []actor.PropsOption {
	if n == nil {
		return nil
	}
	return []actor.PropsOption{actor.WithReceiverMiddleware(n.middleware(name))}
}
