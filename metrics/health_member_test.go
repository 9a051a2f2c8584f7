package metrics_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/metrics"
)

// registries keeps each member's registry of its current run.
type registries struct {
	mu   sync.Mutex
	regs map[uint64]*prometheus.Registry
}

func (r *registries) tune(cfg *actors.NodeConfig) {
	reg := prometheus.NewRegistry()
	cfg.Metrics = metrics.New(reg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs[cfg.ID] = reg
}

// value is the value of the metric name (one series) of member id.
func (r *registries) value(id uint64, name string) (float64, error) {
	r.mu.Lock()
	reg := r.regs[id]
	r.mu.Unlock()
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue(), nil
		}
		return m.GetCounter().GetValue(), nil
	}
	return 0, fmt.Errorf("member %d has no metric %s", id, name)
}

// values reads several metrics of member id.
func (r *registries) values(id uint64, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	for _, n := range names {
		v, err := r.value(id, n)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

const (
	dbSize    = "raftkv_kv_db_total_size_in_bytes"
	dbInUse   = "raftkv_kv_db_total_size_in_use_in_bytes"
	quota     = "raftkv_kv_quota_backend_bytes"
	hasLeader = "raftkv_raft_has_leader"
	committed = "raftkv_raft_committed_index"
	applied   = "raftkv_kv_applied_index"
	snapshot  = "raftkv_snapshot_apply_in_progress"
	changes   = "raftkv_raft_leader_changes_total"
)

// The health gauges of real members follow them: a leader known, the
// committed index and the applied index behind it level once writes stop,
// the db's sizes growing with the data, the quota as configured; a member
// cut off from the others knows no leader.
func TestHealthGaugesFollowTheMember(t *testing.T) {
	t.Cleanup(func() { testutil.VerifyNone(t) }) // first, so it runs after the cluster's stop
	regs := &registries{regs: make(map[uint64]*prometheus.Registry)}
	c := testcluster.New(t, testcluster.Config{Tune: func(cfg *actors.NodeConfig) {
		cfg.Quota = 1 << 30
		regs.tune(cfg)
	}})
	lead, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	settled := func(what string) map[uint64]map[string]float64 {
		t.Helper()
		out := make(map[uint64]map[string]float64)
		testutil.Eventually(t, 10*time.Second, what, func() error {
			for _, m := range c.Members {
				v, err := regs.values(m.ID, dbSize, dbInUse, quota, hasLeader, committed, applied, snapshot)
				if err != nil {
					return err
				}
				st, err := c.Status(m)
				if err != nil {
					return err
				}
				switch {
				case v[hasLeader] != 1:
					return fmt.Errorf("member %d: has_leader %v", m.ID, v[hasLeader])
				case v[committed] != float64(st.Commit) || v[applied] != v[committed]:
					return fmt.Errorf("member %d: committed %v, applied %v, status commit %d", m.ID, v[committed], v[applied], st.Commit)
				case v[dbSize] <= 0 || v[dbInUse] <= 0 || v[dbInUse] > v[dbSize]:
					return fmt.Errorf("member %d: db size %v, in use %v", m.ID, v[dbSize], v[dbInUse])
				case v[quota] != 1<<30 || v[snapshot] != 0:
					return fmt.Errorf("member %d: quota %v, snapshot in progress %v", m.ID, v[quota], v[snapshot])
				}
				out[m.ID] = v
			}
			return nil
		})
		return out
	}
	before := settled("gauges of a cluster at rest")

	value := strings.Repeat("x", 64<<10)
	for i := range 32 { // 2 MiB: the db grows past what a new one holds
		r, err := c.Do(lead, http.MethodPut, fmt.Sprintf("/v1/kv/k%d", i), value)
		if err != nil || r.Code/100 != 2 {
			t.Fatalf("put %d: %v %+v", i, err, r)
		}
	}
	after := settled("gauges after 2 MiB of writes")
	for id, v := range after {
		if v[committed] < before[id][committed]+32 {
			t.Errorf("member %d: committed index %v after 32 writes, %v before", id, v[committed], before[id][committed])
		}
		if v[dbSize] < before[id][dbSize]+2<<20 || v[dbInUse] < before[id][dbInUse]+2<<20 {
			t.Errorf("member %d: db size %v (in use %v) after 2 MiB of writes, %v (%v) before",
				id, v[dbSize], v[dbInUse], before[id][dbSize], before[id][dbInUse])
		}
	}

	cut := c.Member(3)
	changesBefore, err := regs.value(cut.ID, changes)
	if err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate(cut.ID)
	testutil.Eventually(t, 10*time.Second, "a cut-off member knows no leader", func() error {
		v, err := regs.values(cut.ID, hasLeader, changes)
		if err != nil {
			return err
		}
		if v[hasLeader] != 0 || v[changes] <= changesBefore {
			return fmt.Errorf("has_leader %v, leader changes %v (%v before)", v[hasLeader], v[changes], changesBefore)
		}
		return nil
	})
	c.Net.Heal()
	settled("gauges once the member is back")
}
