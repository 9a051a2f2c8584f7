package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The health gauges are registered under etcd's names in this node's
// namespace, as gauges, and show what they were set to.
func TestHealthGaugesNamedAsEtcd(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	h := m.Health
	h.DBSize.Set(1 << 20)
	h.DBSizeInUse.Set(1 << 19)
	h.Quota.Set(2 << 30)
	h.HasLeader.Set(1)
	h.CommittedIndex.Set(42)
	h.SnapshotInProgress.Inc()
	m.AppliedIndex.Set(41)
	m.LeaderChanges.Inc()
	want := `
# HELP raftkv_kv_db_total_size_in_bytes Size of the db as its last commit left it, in bytes (the file is grown ahead of it).
# TYPE raftkv_kv_db_total_size_in_bytes gauge
raftkv_kv_db_total_size_in_bytes 1.048576e+06
# HELP raftkv_kv_db_total_size_in_use_in_bytes Bytes of the db in use: its size less the pages on bbolt's free list, which a defragmentation gives back.
# TYPE raftkv_kv_db_total_size_in_use_in_bytes gauge
raftkv_kv_db_total_size_in_use_in_bytes 524288
# HELP raftkv_kv_quota_backend_bytes The quota of the data in bytes (--quota-backend-bytes); 0 for none.
# TYPE raftkv_kv_quota_backend_bytes gauge
raftkv_kv_quota_backend_bytes 2.147483648e+09
# HELP raftkv_raft_has_leader 1 while this member knows a leader, 0 while it knows none.
# TYPE raftkv_raft_has_leader gauge
raftkv_raft_has_leader 1
# HELP raftkv_raft_committed_index The raft log's commit index as this member knows it; raftkv_kv_applied_index follows it.
# TYPE raftkv_raft_committed_index gauge
raftkv_raft_committed_index 42
# HELP raftkv_snapshot_apply_in_progress 1 while this member receives a snapshot's db from the leader or installs a snapshot, else 0.
# TYPE raftkv_snapshot_apply_in_progress gauge
raftkv_snapshot_apply_in_progress 1
# HELP raftkv_kv_applied_index Index of the last applied entry.
# TYPE raftkv_kv_applied_index gauge
raftkv_kv_applied_index 41
# HELP raftkv_raft_leader_changes_total Times this member saw the leader change, including to no leader.
# TYPE raftkv_raft_leader_changes_total counter
raftkv_raft_leader_changes_total 1
`
	names := []string{
		"raftkv_kv_db_total_size_in_bytes", "raftkv_kv_db_total_size_in_use_in_bytes", "raftkv_kv_quota_backend_bytes",
		"raftkv_raft_has_leader", "raftkv_raft_committed_index", "raftkv_snapshot_apply_in_progress",
		"raftkv_kv_applied_index", "raftkv_raft_leader_changes_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}
