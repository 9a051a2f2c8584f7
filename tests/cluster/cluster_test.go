// Package cluster tests the whole actor topology of three members in this
// process (internal/testcluster), over the in-memory network or over the
// HTTP peer transport on loopback, each through its HTTP API.
package cluster

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/internal/testcluster"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// waitFor bounds any "eventually" of these tests.
const waitFor = 20 * time.Second

// cluster is a testcluster.Cluster whose members the tests name by id, with
// the tests' assertions: each fails the test rather than return an error.
type cluster struct {
	*testcluster.Cluster
	t testing.TB
}

// network names the transports a test can run its cluster over.
type network string

const (
	overMemory network = "memory"
	overHTTP   network = "http"
)

// forEachNetwork runs test once over each transport.
func forEachNetwork(t *testing.T, test func(t *testing.T, over network)) {
	for _, over := range []network{overMemory, overHTTP} {
		t.Run(string(over), func(t *testing.T) { test(t, over) })
	}
}

func newCluster(t *testing.T, n int, tune func(*actors.NodeConfig)) *cluster {
	return newClusterOver(t, overMemory, n, tune)
}

// newClusterOver starts n members over the network; tune, if set, changes
// each member's configuration. The cluster stops when the test ends.
func newClusterOver(t testing.TB, over network, n int, tune func(*actors.NodeConfig)) *cluster {
	t.Helper()
	return &cluster{Cluster: testcluster.New(t, testcluster.Config{Members: n, OverHTTP: over == overHTTP, Tune: tune}), t: t}
}

// newMember names the next member without starting it.
func (c *cluster) newMember() *testcluster.Member {
	c.t.Helper()
	m, err := c.NewMember()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// start runs member id from its data dir (made on its first start).
func (c *cluster) start(id uint64, join bool) {
	c.t.Helper()
	if err := c.Member(id).Start(join); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) stop(id uint64) {
	c.t.Helper()
	if err := c.Member(id).Stop(); err != nil {
		c.t.Error(err)
	}
}

type reply = testcluster.Reply

func (c *cluster) do(id uint64, method, path, body string) reply {
	c.t.Helper()
	m := c.Member(id)
	if !m.Running() {
		c.t.Fatalf("member %d is not running", id)
	}
	r, err := c.Do(m, method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *cluster) status(id uint64) (messages.Status, error) { return c.Status(c.Member(id)) }

// leader waits until every running member names the same running leader.
func (c *cluster) leader() uint64 {
	c.t.Helper()
	m, err := c.WaitLeader(waitFor)
	if err != nil {
		c.t.Fatalf("agree on a leader: %v", err)
	}
	return m.ID
}

// follower is a running member that is not the leader, nor one of not.
func (c *cluster) follower(not ...uint64) uint64 {
	c.t.Helper()
	lead := c.leader()
outer:
	for _, m := range c.Running() {
		if m.ID == lead {
			continue
		}
		for _, n := range not {
			if m.ID == n {
				continue outer
			}
		}
		return m.ID
	}
	c.t.Fatal("no follower")
	return 0
}

// put writes through member id, retrying only answers that say the write
// was not proposed (503: no leader yet).
func (c *cluster) put(id uint64, key, val string) {
	c.t.Helper()
	testutil.Eventually(c.t, waitFor, fmt.Sprintf("PUT %s through %d", key, id), func() error {
		r := c.do(id, http.MethodPut, "/v1/kv/"+key, val)
		switch r.Code {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable:
			return fmt.Errorf("%d %s", r.Code, r.Body)
		}
		c.t.Fatalf("PUT %s through %d: %d %s", key, id, r.Code, r.Body)
		return nil
	})
}

// get reads key through member id; serializable reads skip the read index.
func (c *cluster) get(id uint64, key string, serializable bool) reply {
	c.t.Helper()
	q := ""
	if serializable {
		q = "?consistency=serializable"
	}
	return c.do(id, http.MethodGet, "/v1/kv/"+key+q, "")
}

// expect waits until key reads as want through member id.
func (c *cluster) expect(id uint64, key, want string, serializable bool) {
	c.t.Helper()
	testutil.Eventually(c.t, waitFor, fmt.Sprintf("read %s through %d", key, id), func() error {
		r := c.get(id, key, serializable)
		if r.Code != http.StatusOK || r.Body != want {
			return fmt.Errorf("got %d %q, want 200 %q", r.Code, r.Body, want)
		}
		return nil
	})
}

// converged waits until every running member has applied the same index
// and reports the same digest of its state.
func (c *cluster) converged() {
	c.t.Helper()
	if _, err := c.Converged(waitFor); err != nil {
		c.t.Fatalf("members converge: %v", err)
	}
}

// stopsRemoved waits for member id to stop by itself because it was
// removed from the cluster.
func (c *cluster) stopsRemoved(id uint64) {
	c.t.Helper()
	node := c.Member(id).Node
	testutil.Eventually(c.t, waitFor, fmt.Sprintf("removed member %d stops", id), func() error {
		select {
		case <-node.Done():
			return nil
		default:
			return errors.New("it runs")
		}
	})
	if err := node.Err(); !errors.Is(err, messages.ErrRemoved) {
		c.t.Fatalf("removed member %d stopped with %v, want ErrRemoved", id, err)
	}
}
