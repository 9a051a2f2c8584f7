package testcluster

import (
	"net/http"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestClusterConverges starts a cluster over each network, writes through
// a follower, reads the write's effect in every member's digest, and
// restarts that follower, which comes back on the same client URL with
// the same state.
func TestClusterConverges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		overHTTP bool
	}{
		{"memory", false},
		{"http", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(t, Config{OverHTTP: tc.overHTTP})
			if (c.Net == nil) != tc.overHTTP {
				t.Fatalf("in-memory network %v over HTTP %v", c.Net, tc.overHTTP)
			}
			lead, err := c.WaitLeader(20 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			via := c.Members[0]
			if via == lead {
				via = c.Members[1]
			}
			if r, err := c.Do(via, http.MethodPut, "/v1/kv/a%2F%2Fb", "v"); err != nil || r.Code != http.StatusOK {
				t.Fatalf("PUT through member %d: %+v %v", via.ID, r, err)
			}
			d, err := c.Converged(20 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if d.Keys != 1 {
				t.Fatalf("digest %+v, want one key", d)
			}
			if err := c.Stopped(); err != nil {
				t.Fatal(err)
			}
			// The member list holds every member's published client URL.
			ms, err := c.MemberList(lead)
			if err != nil || len(ms) != len(c.Members) {
				t.Fatalf("members %+v, %v", ms, err)
			}

			url := via.URL
			if err := via.Stop(); err != nil {
				t.Fatal(err)
			}
			if via.Running() || len(c.Running()) != 2 {
				t.Fatalf("after Stop: member %d running %v, %d running", via.ID, via.Running(), len(c.Running()))
			}
			if err := via.Start(false); err != nil {
				t.Fatal(err)
			}
			if via.URL != url {
				t.Fatalf("restarted on %s, was %s", via.URL, url)
			}
			if d2, err := c.Converged(20 * time.Second); err != nil || d2.Keys != 1 {
				t.Fatalf("after the restart: %+v %v, want one key", d2, err)
			}
		})
	}
}
