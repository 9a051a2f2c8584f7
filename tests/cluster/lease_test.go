package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/internal/testutil"
)

// grant asks member id for a lease of ttl seconds and returns its id.
func (c *cluster) grant(id uint64, ttl int) string {
	c.t.Helper()
	r := c.do(id, http.MethodPost, "/v1/leases", fmt.Sprintf(`{"ttl":%d}`, ttl))
	var out struct{ ID string }
	if r.Code != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil || out.ID == "" {
		c.t.Fatalf("grant through %d: %d %s", id, r.Code, r.Body)
	}
	return out.ID
}

// leasedOn reads key from member id's own applied state and returns the
// lease it shows ("" for none), or an error if the key is absent.
func (c *cluster) leasedOn(id uint64, key string) (string, error) {
	r := c.do(id, http.MethodGet, "/v1/kv/?consistency=serializable&prefix="+key, "")
	var out struct {
		KVs []struct {
			Key   string
			Lease string
		}
	}
	if r.Code != http.StatusOK || json.Unmarshal([]byte(r.Body), &out) != nil {
		return "", fmt.Errorf("range read through %d: %d %s", id, r.Code, r.Body)
	}
	for _, kv := range out.KVs {
		if kv.Key == key {
			return kv.Lease, nil
		}
	}
	return "", fmt.Errorf("%s is absent on member %d", key, id)
}

// A lease and its keys are replicated state: they survive a follower's
// catch-up by snapshot and its restarts, and the leader's death (the new
// leader answers its keep-alives); a revocation then deletes its keys on
// every member. A lease nobody keeps alive expires even when the leader
// that granted it dies first: the new leader extends it by an election
// timeout, then revokes it.
//
// Over HTTP: a follower hands keep-alives to the leader's peer API, which
// the in-memory network does not serve.
func TestLeasesSurviveSnapshotsRestartsAndLeaderChanges(t *testing.T) {
	c := newClusterOver(t, overHTTP, 3, func(cfg *actors.NodeConfig) {
		cfg.SnapshotCount = 10
		cfg.CatchUpEntries = 2
	})
	lead := c.leader()
	lease := c.grant(lead, 600)
	if r := c.do(lead, http.MethodPut, "/v1/kv/held?lease="+lease, "v"); r.Code != http.StatusOK {
		t.Fatalf("put on the lease: %d %s", r.Code, r.Body)
	}

	f := c.follower()
	c.stop(f)
	for i := range 40 {
		c.put(lead, fmt.Sprintf("k%02d", i), "v")
	}
	testutil.Eventually(t, waitFor, "leader compacts its log", func() error {
		if snaps, _ := filepath.Glob(filepath.Join(c.Member(lead).DataDir, "snap", "*.snap")); len(snaps) == 0 {
			return errors.New("no snapshot yet")
		}
		return nil
	})
	before := c.SnapshotsSent()
	c.start(f, false)
	c.expect(f, "k39", "v", true) // caught up
	if got, err := c.leasedOn(f, "held"); err != nil || got != lease {
		t.Fatalf("after the catch-up: lease %q, %v", got, err)
	}
	if c.SnapshotsSent() == before {
		t.Fatal("the follower caught up without a snapshot: the test did not exercise what it claims")
	}
	c.stop(f)
	c.start(f, false)
	if got, err := c.leasedOn(f, "held"); err != nil || got != lease {
		t.Fatalf("after a restart: lease %q, %v", got, err)
	}
	c.converged() // the digests cover the leases and their keys

	// A lease nobody keeps alive, granted by the leader, which then dies;
	// the survivors elect another, which keeps the long lease and expires
	// the short one.
	short := c.grant(lead, 2)
	if r := c.do(lead, http.MethodPut, "/v1/kv/short?lease="+short, "v"); r.Code != http.StatusOK {
		t.Fatalf("put on the short lease: %d %s", r.Code, r.Body)
	}
	c.stop(lead)
	newLead := c.leader()
	for _, id := range []uint64{newLead, c.follower(lead, newLead)} {
		// A 503 (the member has not heard of the new leader yet) means
		// retry; nothing else does.
		testutil.Eventually(t, waitFor, fmt.Sprintf("a keep-alive through %d", id), func() error {
			r := c.do(id, http.MethodPost, "/v1/leases/"+lease+"/keepalive", "")
			switch {
			case r.Code == http.StatusServiceUnavailable:
				return fmt.Errorf("%d %s", r.Code, r.Body)
			case r.Code != http.StatusOK || !strings.Contains(r.Body, `"ttl":600`):
				t.Fatalf("keep-alive through %d after the leader died: %d %s", id, r.Code, r.Body)
			}
			return nil
		})
	}
	c.start(lead, false)
	testutil.Eventually(t, waitFor, "the short lease expires", func() error {
		for id := uint64(1); id <= 3; id++ {
			if _, err := c.leasedOn(id, "short"); err == nil {
				return fmt.Errorf("short is still on member %d", id)
			}
		}
		return nil
	})
	if got, err := c.leasedOn(lead, "held"); err != nil || got != lease {
		t.Fatalf("the restarted old leader: lease %q, %v", got, err)
	}

	if r := c.do(f, http.MethodDelete, "/v1/leases/"+lease, ""); r.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Code, r.Body)
	}
	for id := uint64(1); id <= 3; id++ {
		if r := c.get(id, "held", false); r.Code != http.StatusNotFound {
			t.Fatalf("held through %d after the revocation: %d %s", id, r.Code, r.Body)
		}
	}
	c.converged()
}
