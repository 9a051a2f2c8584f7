package node_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/transport"
)

// Timing of the in-process clusters: a 20 ms tick keeps elections well under
// a second, and 10 ticks of election timeout is still 10 missed heartbeats, so
// a loaded 2-core machine running the suite with -race does not flap.
const (
	testTick      = 20 * time.Millisecond
	clientTimeout = 2 * time.Second
	waitFor       = 20 * time.Second // bound on any "eventually"
)

// cluster runs members in this process, each with its own data dir and HTTP
// API, over one in-memory network or over the HTTP peer transport on
// loopback.
type cluster struct {
	t       testing.TB
	net     *transport.Network // nil over HTTP
	peers   map[uint64]string  // every member ever named, id → peer URL
	dirs    map[uint64]string
	members map[uint64]*member // running ones
	tune    func(*actors.NodeConfig)
	// listeners holds the peer port of each HTTP member between the moment
	// its URL is handed out and its start.
	listeners map[uint64]net.Listener
}

type member struct {
	node *actors.Node
	api  *httptest.Server
	peer *http.Server    // over HTTP only
	tr   *transport.HTTP // over HTTP only
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

func newClusterOver(t testing.TB, over network, n int, tune func(*actors.NodeConfig)) *cluster {
	t.Helper()
	c := &cluster{
		t:         t,
		peers:     make(map[uint64]string),
		dirs:      make(map[uint64]string),
		members:   make(map[uint64]*member),
		tune:      tune,
		listeners: make(map[uint64]net.Listener),
	}
	if over == overMemory {
		c.net = transport.NewNetwork()
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peerURL(id)
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.start(id, false)
	}
	t.Cleanup(c.stopAll)
	return c
}

// peerURL names member id's peer URL, the first time by taking a free port
// for it over HTTP, or by making one up in memory.
func (c *cluster) peerURL(id uint64) string {
	if u, ok := c.peers[id]; ok {
		return u
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", 10000+id)
	if c.net == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.t.Fatal(err)
		}
		c.listeners[id] = ln
		u = "http://" + ln.Addr().String()
	}
	c.peers[id] = u
	return u
}

// peerListener returns member id's peer listener: the one taken with its
// URL, or, for a restart, the same port again.
func (c *cluster) peerListener(id uint64) net.Listener {
	if ln, ok := c.listeners[id]; ok {
		delete(c.listeners, id)
		return ln
	}
	ln, err := net.Listen("tcp", strings.TrimPrefix(c.peers[id], "http://"))
	if err != nil {
		c.t.Fatalf("listen again on member %d's peer port: %v", id, err)
	}
	return ln
}

// snapshotsSent counts the snapshots the running members delivered.
func (c *cluster) snapshotsSent() uint64 {
	if c.net != nil {
		return uint64(c.net.Delivered(raftpb.MsgSnap))
	}
	var n uint64
	for _, m := range c.members {
		for _, s := range m.tr.Stats() {
			n += s.SnapshotsSent
		}
	}
	return n
}

func testLogger() *zap.Logger {
	if os.Getenv("RAFTKV_TEST_LOG") != "" {
		lg, _ := zap.NewDevelopment()
		return lg
	}
	return zap.NewNop()
}

// start runs member id from its data dir (made on first start).
func (c *cluster) start(id uint64, join bool) *member {
	c.t.Helper()
	dir, ok := c.dirs[id]
	if !ok {
		dir = c.t.TempDir()
		c.dirs[id] = dir
	}
	m := &member{}
	cfg := actors.NodeConfig{
		ID:           id,
		ClusterID:    1,
		Peers:        maps.Clone(c.peers),
		Join:         join,
		DataDir:      dir,
		TickInterval: testTick,
		Transport: func(env actors.TransportEnv) (transport.Transport, error) {
			if c.net != nil {
				return c.net.JoinWith(id, env.Inbox, transport.MemoryOptions{
					SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink}), nil
			}
			tr, err := transport.NewHTTP(transport.HTTPConfig{
				ID: id, ClusterID: env.ClusterID, URL: c.peers[id], System: env.System, Inbox: env.Inbox,
				SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink,
				Logger: testLogger().With(zap.Uint64("test_member", id)).Named("transport"),
			})
			m.tr = tr
			return tr, err
		},
		RequestTimeout: clientTimeout,
		Logger:         testLogger().With(zap.Uint64("test_member", id)),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	node, err := actors.StartNode(cfg)
	if err != nil {
		c.t.Fatalf("start member %d: %v", id, err)
	}
	m.node = node
	m.api = httptest.NewServer(httpapi.NewHandler(httpapi.HandlerConfig{
		Root:    node.Root(),
		KV:      node.KV(),
		Raft:    node.Raft(),
		Timeout: clientTimeout,
	}))
	if m.tr != nil {
		m.peer = &http.Server{Handler: m.tr.Handler()}
		ln := c.peerListener(id)
		go func() { _ = m.peer.Serve(ln) }() // ends when stop closes the server
	}
	c.members[id] = m
	return m
}

func (c *cluster) stop(id uint64) {
	c.t.Helper()
	m, ok := c.members[id]
	if !ok {
		return
	}
	delete(c.members, id)
	m.api.Close()
	if m.peer != nil {
		// Close, not Shutdown: peer streams are endless responses, which
		// the node's transport lets go of when it stops.
		_ = m.peer.Close()
	}
	if err := m.node.Stop(); err != nil {
		c.t.Errorf("stop member %d: %v", id, err)
	}
}

func (c *cluster) stopAll() {
	for id := range c.members {
		c.stop(id)
	}
	for _, ln := range c.listeners {
		_ = ln.Close()
	}
}

// eventually polls f until it returns nil or waitFor passes.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, waitFor, err)
		}
		time.Sleep(testTick) // polling interval, not synchronization
	}
}

type reply struct {
	code int
	body string
}

func (c *cluster) do(id uint64, method, path, body string) reply {
	c.t.Helper()
	m, ok := c.members[id]
	if !ok {
		c.t.Fatalf("member %d is not running", id)
	}
	req, err := http.NewRequest(method, m.api.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := m.api.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on member %d: %v", method, path, id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return reply{resp.StatusCode, string(b)}
}

func (c *cluster) status(id uint64) (messages.Status, error) {
	r := c.do(id, http.MethodGet, "/v1/status", "")
	var st messages.Status
	if r.code != http.StatusOK {
		return st, fmt.Errorf("status %d: %s", r.code, r.body)
	}
	return st, json.Unmarshal([]byte(r.body), &st)
}

// leader waits until every running member names the same running leader.
func (c *cluster) leader() uint64 {
	c.t.Helper()
	var lead uint64
	eventually(c.t, "agree on a leader", func() error {
		lead = 0
		for id := range c.members {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return fmt.Errorf("member %d knows no leader", id)
			}
			if lead != 0 && st.Leader != lead {
				return fmt.Errorf("members disagree: %d and %d", lead, st.Leader)
			}
			lead = st.Leader
		}
		if _, ok := c.members[lead]; !ok {
			return fmt.Errorf("leader %d is not running", lead)
		}
		return nil
	})
	return lead
}

// put writes through member id, retrying only answers that say the write
// was not proposed (503: no leader yet).
func (c *cluster) put(id uint64, key, val string) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("PUT %s through %d", key, id), func() error {
		r := c.do(id, http.MethodPut, "/v1/kv/"+key, val)
		switch r.code {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable:
			return fmt.Errorf("%d %s", r.code, r.body)
		}
		c.t.Fatalf("PUT %s through %d: %d %s", key, id, r.code, r.body)
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
	eventually(c.t, fmt.Sprintf("read %s through %d", key, id), func() error {
		r := c.get(id, key, serializable)
		if r.code != http.StatusOK || r.body != want {
			return fmt.Errorf("got %d %q, want 200 %q", r.code, r.body, want)
		}
		return nil
	})
}

// converged waits until every running member has applied the same index
// and reports the same digest of its state.
func (c *cluster) converged() {
	c.t.Helper()
	eventually(c.t, "members converge", func() error {
		var first messages.Digest
		for id := range c.members {
			r := c.do(id, http.MethodGet, "/v1/digest", "")
			var d messages.Digest
			if r.code != http.StatusOK {
				return fmt.Errorf("digest of %d: %d %s", id, r.code, r.body)
			}
			if err := json.Unmarshal([]byte(r.body), &d); err != nil {
				return err
			}
			if first.Sum == "" {
				first = d
				continue
			}
			if d != first {
				return fmt.Errorf("member %d has %+v, another %+v", id, d, first)
			}
		}
		return nil
	})
}

func (c *cluster) follower(not ...uint64) uint64 {
	lead := c.leader()
outer:
	for id := range c.members {
		if id == lead {
			continue
		}
		for _, n := range not {
			if id == n {
				continue outer
			}
		}
		return id
	}
	c.t.Fatal("no follower")
	return 0
}

var errNotYet = errors.New("not yet")
