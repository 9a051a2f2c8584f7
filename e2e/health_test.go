package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testcerts"
	"github.com/raftkv/node/internal/testutil"
)

const (
	liveVerbose  = "[+]raft_actor ok\n[+]kv_actor ok\nok\n"
	readyVerbose = "[+]raft_actor ok\n[+]kv_actor ok\n[+]leader ok\n[+]applied ok\n[+]no_space_alarm ok\nok\n"
	// healthQuota is the members' --quota-backend-bytes, which
	// raftkv_kv_quota_backend_bytes must show.
	healthQuota = 1 << 30
)

// metricValue reads the value of a metric without labels from a scrape.
func metricValue(scrape, name string) (float64, error) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(scrape)
	if m == nil {
		return 0, fmt.Errorf("no metric %s in the scrape", name)
	}
	return strconv.ParseFloat(m[1], 64)
}

// A three-member cluster whose client URLs are https with client
// certificates required: every member is live and ready on its client
// port (with a certificate) and on its --listen-metrics-urls listener
// (plain, with none), which serves /metrics with the health gauges and no
// data; a member cut off from the others (both killed) stays live and is
// not ready, and its gauges say it knows no leader.
func TestHealthAndMetricsListener(t *testing.T) {
	ca := testcerts.NewCA(t, "raftkv test CA")
	clientCert, clientKey := ca.Issue(t, "client")
	client := tlsClient(t, ca, clientCert, clientKey)
	metricsURL := map[uint64]string{}
	c := newClusterWith(t, 3, clusterOpts{
		scheme: "https",
		client: client,
		memberFlags: func(m *member) []string {
			if metricsURL[m.id] == "" {
				metricsURL[m.id] = "http://127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1)[0])
			}
			cert, key := ca.Issue(t, peerCN)
			return []string{
				"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca.CertFile(),
				"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca.CertFile(), "--client-cert-auth",
				"--listen-metrics-urls", metricsURL[m.id],
				"--quota-backend-bytes", strconv.Itoa(healthQuota),
			}
		},
	})
	lead := c.leader(c.members...)
	mustWrite(t, lead.base, "/v1/kv/health", "ok", http.StatusOK)

	for _, m := range c.members {
		plain := metricsURL[m.id]
		testutil.Eventually(t, 10*time.Second, m.name()+" live and ready on both ports", func() error {
			for _, want := range []struct{ url, body string }{
				{m.base + "/livez?verbose", liveVerbose},
				{m.base + "/readyz?verbose", readyVerbose},
				{plain + "/livez?verbose", liveVerbose},
				{plain + "/readyz?verbose", readyVerbose},
				{plain + "/readyz", "ok\n"},
				{plain + "/healthz", "ok\n"},
			} {
				if r := call(http.MethodGet, want.url, ""); r.err != nil || r.code != 200 || r.body != want.body {
					return fmt.Errorf("GET %s: %s, want 200 %q", want.url, r, want.body)
				}
			}
			return nil
		})
		// The client port wants a certificate; the listener wants none,
		// and serves no data.
		if r, err := tlsClient(t, ca, "", "").Get(m.base + "/readyz"); err == nil {
			r.Body.Close()
			t.Errorf("%s: the client port answered /readyz without a client certificate: %s", m.name(), r.Status)
		}
		if r := call(http.MethodGet, plain+"/v1/kv/health", ""); r.code != 404 {
			t.Errorf("%s: GET /v1/kv/health on the metrics listener: %s, want 404", m.name(), r)
		}
		mustRead(t, m.base, "/v1/kv/health", "ok")
		testutil.Eventually(t, 10*time.Second, m.name()+"'s gauges", func() error {
			r := call(http.MethodGet, plain+"/metrics", "")
			if r.err != nil || r.code != 200 {
				return fmt.Errorf("GET /metrics: %s", r)
			}
			return checkGauges(r.body, 1)
		})
	}

	alone := c.others(lead)[0]
	for _, m := range c.others(alone) {
		kill9(t, m.p)
	}
	plain := metricsURL[alone.id]
	testutil.Eventually(t, 10*time.Second, alone.name()+" not ready once alone", func() error {
		r := call(http.MethodGet, plain+"/readyz", "")
		if r.err != nil || r.code != 503 || !strings.Contains(r.body, "[-]leader failed: no raft leader\n") ||
			!strings.Contains(r.body, "[-]applied failed: ") {
			return fmt.Errorf("GET /readyz: %s, want 503 with leader and applied failed", r)
		}
		return nil
	})
	for _, url := range []string{alone.base + "/readyz", plain + "/readyz/leader", plain + "/healthz"} {
		if r := call(http.MethodGet, url, ""); r.code != 503 {
			t.Errorf("GET %s of a member alone: %s, want 503", url, r)
		}
	}
	for _, url := range []string{alone.base + "/livez?verbose", plain + "/livez?verbose"} {
		if r := call(http.MethodGet, url, ""); r.code != 200 || r.body != liveVerbose {
			t.Errorf("GET %s of a member alone: %s, want 200 %q", url, r, liveVerbose)
		}
	}
	r := call(http.MethodGet, plain+"/metrics", "")
	if r.code != 200 {
		t.Fatalf("GET /metrics of a member alone: %s", r)
	}
	if err := checkGauges(r.body, 0); err != nil {
		t.Error(err)
	}
}

// checkGauges checks the health gauges of a scrape: a leader known or not
// (hasLeader), the applied index at most the committed one and both past
// the first entries, the db's sizes, the quota, no snapshot installing.
func checkGauges(scrape string, hasLeader float64) error {
	v := map[string]float64{}
	for _, name := range []string{
		"raftkv_raft_has_leader", "raftkv_raft_committed_index", "raftkv_kv_applied_index",
		"raftkv_kv_db_total_size_in_bytes", "raftkv_kv_db_total_size_in_use_in_bytes",
		"raftkv_kv_quota_backend_bytes", "raftkv_snapshot_apply_in_progress", "raftkv_raft_leader_changes_total",
	} {
		x, err := metricValue(scrape, name)
		if err != nil {
			return err
		}
		v[name] = x
	}
	var errs []error
	if v["raftkv_raft_has_leader"] != hasLeader {
		errs = append(errs, fmt.Errorf("has_leader %v, want %v", v["raftkv_raft_has_leader"], hasLeader))
	}
	if c, a := v["raftkv_raft_committed_index"], v["raftkv_kv_applied_index"]; a < 3 || a > c {
		errs = append(errs, fmt.Errorf("applied index %v, committed %v: want 3 ≤ applied ≤ committed", a, c))
	}
	if s, u := v["raftkv_kv_db_total_size_in_bytes"], v["raftkv_kv_db_total_size_in_use_in_bytes"]; u <= 0 || u > s {
		errs = append(errs, fmt.Errorf("db size %v, in use %v", s, u))
	}
	if q := v["raftkv_kv_quota_backend_bytes"]; q != healthQuota {
		errs = append(errs, fmt.Errorf("quota %v, want %d", q, healthQuota))
	}
	if v["raftkv_snapshot_apply_in_progress"] != 0 || v["raftkv_raft_leader_changes_total"] < 1 {
		errs = append(errs, fmt.Errorf("snapshot in progress %v, leader changes %v", v["raftkv_snapshot_apply_in_progress"], v["raftkv_raft_leader_changes_total"]))
	}
	return errors.Join(errs...)
}
