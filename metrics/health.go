package metrics

import "github.com/prometheus/client_golang/prometheus"

// Health is the gauges an operator's dashboards and alerts read first, as
// etcd's server gauges: the db's size against the quota, whether a leader
// is known, how far applying is behind committing, a snapshot being
// installed. Each is set where its value changes (a commit of the db, a
// Ready, a change of leader, a snapshot received), never per write. Named
// as etcd's counterparts in this node's namespace: raftkv_kv_ for etcd's
// etcd_mvcc_ and the state machine's etcd_server_, raftkv_raft_ for raft's.
// The leader changes and the applied index are raft's LeaderChanges and
// the kv actor's AppliedIndex (Node).
type Health struct {
	// DBSize is the db's size as its last commit left it, DBSizeInUse the
	// part of it not on bbolt's free list (what Status reports, and etcd's
	// etcd_mvcc_db_total_size_in_bytes and _in_use_in_bytes): the file on
	// disk is grown ahead, 16 MiB at a time.
	DBSize      prometheus.Gauge
	DBSizeInUse prometheus.Gauge
	// Quota is --quota-backend-bytes (etcd_server_quota_backend_bytes);
	// 0 for none.
	Quota prometheus.Gauge
	// HasLeader is 1 while this member knows a leader
	// (etcd_server_has_leader).
	HasLeader prometheus.Gauge
	// CommittedIndex is the raft log's commit index as this member knows it
	// (etcd_server_proposals_committed_total, a gauge despite its name):
	// with the kv actor's applied index, how far applying is behind.
	CommittedIndex prometheus.Gauge
	// SnapshotInProgress is 1 while this member receives the db of a
	// snapshot from the leader or installs one (etcd's
	// etcd_server_snapshot_apply_in_progress_total); the transport takes
	// one at a time.
	SnapshotInProgress prometheus.Gauge
}

func newHealth(f factory) Health {
	return Health{
		DBSize:             f.gauge("kv", "db_total_size_in_bytes", "Size of the db as its last commit left it, in bytes (the file is grown ahead of it)."),
		DBSizeInUse:        f.gauge("kv", "db_total_size_in_use_in_bytes", "Bytes of the db in use: its size less the pages on bbolt's free list, which a defragmentation gives back."),
		Quota:              f.gauge("kv", "quota_backend_bytes", "The quota of the data in bytes (--quota-backend-bytes); 0 for none."),
		HasLeader:          f.gauge("raft", "has_leader", "1 while this member knows a leader, 0 while it knows none."),
		CommittedIndex:     f.gauge("raft", "committed_index", "The raft log's commit index as this member knows it; raftkv_kv_applied_index follows it."),
		SnapshotInProgress: f.gauge("snapshot", "apply_in_progress", "1 while this member receives a snapshot's db from the leader or installs a snapshot, else 0."),
	}
}
