package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// statusServer answers GET /v1/status with st, or with status code when
// st is nil.
func statusServer(t *testing.T, st *nodeStatus, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if st == nil {
			http.Error(w, "no", code)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": st.ID, "leader": st.Leader, "term": st.Term,
			"members": map[string]string{"1": "http://p1", "2": "http://p2", "3": "http://p3"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFindLeader(t *testing.T) {
	type ep struct {
		st      *nodeStatus
		code    int
		refused bool
	}
	up := func(id, leader, term uint64) ep { return ep{st: &nodeStatus{ID: id, Leader: leader, Term: term}} }
	tests := []struct {
		name    string
		eps     []ep
		want    int // index of the leader's endpoint, -1 for errNoLeader
		wantErr int // endpoints whose error must be in the message
	}{
		{"third is leader", []ep{up(1, 3, 5), up(2, 3, 5), up(3, 3, 5)}, 2, 0},
		{"first is leader", []ep{up(1, 1, 2), up(2, 1, 2)}, 0, 0},
		// Ids follow the nodes, not the order of --endpoints.
		{"ids in another order", []ep{up(3, 2, 4), up(2, 2, 4), up(1, 2, 4)}, 1, 0},
		{"others down", []ep{{refused: true}, {code: 500}, up(7, 7, 1)}, 2, 0},
		{"stale leader", []ep{up(1, 1, 3), up(2, 2, 4), up(3, 2, 4)}, 1, 0},
		{"election under way", []ep{up(1, 0, 6), up(2, 0, 6)}, -1, 0},
		{"leader not listed", []ep{up(1, 3, 2), up(2, 3, 2)}, -1, 0},
		{"all down", []ep{{refused: true}, {code: 503}}, -1, 2},
	}
	hc := &http.Client{Transport: newTransport(1, 2*time.Second, nil), Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls []string
			for _, e := range tt.eps {
				if e.refused {
					urls = append(urls, refusedEndpoint(t))
				} else {
					urls = append(urls, statusServer(t, e.st, e.code))
				}
			}
			got, err := findLeader(context.Background(), hc, urls)
			if tt.want < 0 {
				if !errors.Is(err, errNoLeader) {
					t.Fatalf("got %q, %v; want errNoLeader", got, err)
				}
				if tt.wantErr > 0 {
					for _, u := range urls {
						if !strings.Contains(err.Error(), u) {
							t.Errorf("error %q does not name %s", err, u)
						}
					}
				}
				return
			}
			if err != nil || got != urls[tt.want] {
				t.Fatalf("got %q, %v; want %q", got, err, urls[tt.want])
			}
		})
	}
}

// TestLeaderTarget runs put with --target leader over two nodes of which
// only the second leads: every request must reach it.
func TestLeaderTarget(t *testing.T) {
	follower := newFakeNode(t, func(f *fakeNode) { f.id, f.leader = 1, 2 })
	leader := newFakeNode(t, func(f *fakeNode) { f.id, f.leader = 2, 2 })
	cfg := testConfig(cmdPut, 30, follower.url, leader.url)
	cfg.target = targetLeader
	res := mustRun(t, cfg)
	if fp, _, _, _ := follower.counts(); fp != 0 {
		t.Errorf("the follower got %d PUTs", fp)
	}
	if _, acked, _, _ := leader.counts(); acked != 30 || res.writes.ok() != 30 {
		t.Errorf("leader acknowledged %d, report says %d; want 30", acked, res.writes.ok())
	}
	if len(res.endpoints) != 1 || res.endpoints[0] != leader.url {
		t.Errorf("report names endpoints %v, want the leader only", res.endpoints)
	}
}
