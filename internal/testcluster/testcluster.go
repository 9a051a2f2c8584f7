// Package testcluster runs the members of a cluster in the test's own
// process, each wired as cmd/node wires it: its actors (actors.StartNode),
// its client API (httpapi) on a loopback port as the server's handler, as
// cmd/node serves it (so no path is cleaned or redirected on the way, as in
// production), and, over HTTP, its peer port serving the raft transport
// and the peer API. The peers talk over the HTTP transport on loopback
// (OverHTTP) or over an in-memory network (Cluster.Net: cut, isolate,
// heal). Members can be stopped, started again from their data dirs, and
// added (NewMember); Tune changes each member's actors.NodeConfig. The
// in-process tests (tests/cluster) and the fuzz target (tests/fuzz) use
// it. Only tests import it.
package testcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/etcdapi"
	"github.com/raftkv/node/httpapi"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/transport"
)

// Config shapes a cluster; the zero value is three members over the
// in-memory network.
type Config struct {
	// Members is the number of founding members, ids 1 to Members;
	// default 3.
	Members int
	// OverHTTP runs the peers over the HTTP transport on loopback ports,
	// as cmd/node does, instead of the in-memory network.
	OverHTTP bool
	// Dir holds the members' data dirs; "" makes a temporary one, which
	// Stop removes.
	Dir string
	// Tick is the raft tick; default 20 ms, which keeps elections under a
	// second and, with 10 ticks of election timeout, does not flap on a
	// loaded 2-core machine under -race.
	Tick time.Duration
	// RequestTimeout bounds each client request; default 2 s.
	RequestTimeout time.Duration
	// Logger gets the members' logs; nil discards them, unless the
	// environment sets RAFTKV_TEST_LOG, which shows them.
	Logger *zap.Logger
	// Tune, if set, changes a member's configuration before each start.
	Tune func(*actors.NodeConfig)
	// GRPC serves etcd's v3 API (package etcdapi) on a port of each
	// member's own (Member.GRPCAddr), next to its HTTP API.
	GRPC bool
}

// Defaults of Config.
const (
	DefaultMembers        = 3
	DefaultTick           = 20 * time.Millisecond
	DefaultRequestTimeout = 2 * time.Second
)

// Cluster is a set of members, running or not.
type Cluster struct {
	cfg     Config
	dir     string
	tempDir bool
	// Net is the in-memory network between the members, to cut links,
	// isolate members and heal; nil over HTTP.
	Net *transport.Network
	// Members is every member the cluster has named, Members[i] with id
	// i+1: the founding members, then those NewMember added.
	Members []*Member
	client  *http.Client
}

// Member is one member of a Cluster. Its ports and data dir stay the same
// across its restarts.
type Member struct {
	ID uint64
	// URL is the client API's base URL, http://127.0.0.1:<port>.
	URL string
	// PeerURL is the member's peer URL (made up over the in-memory
	// network).
	PeerURL string
	// DataDir is the member's data dir, made on its first start.
	DataDir string
	// Node is the member's actors in its current or last run; nil before
	// its first start.
	Node *actors.Node
	// GRPCAddr is the host:port of etcd's v3 API with Config.GRPC.
	GRPCAddr string

	c      *Cluster
	apiLn  net.Listener // taken when the member is named, until its first start
	peerLn net.Listener // likewise, over HTTP only
	grpcLn net.Listener // likewise, with Config.GRPC only
	grpc   *grpc.Server
	tr     *transport.HTTP
	api    *http.Server
	peer   *http.Server // over HTTP only
	done   chan struct{}
}

// Start names the cluster's founding members and starts them, and returns
// once each of them serves its client API; they may not have elected a
// leader yet (WaitLeader). On an error every member started is stopped
// again.
func Start(cfg Config) (c *Cluster, err error) {
	if cfg.Members <= 0 {
		cfg.Members = DefaultMembers
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
		if os.Getenv("RAFTKV_TEST_LOG") != "" {
			cfg.Logger, _ = zap.NewDevelopment()
		}
	}
	c = &Cluster{cfg: cfg, dir: cfg.Dir, client: &http.Client{Timeout: 2 * cfg.RequestTimeout}}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "raftkv-testcluster-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	}
	if !cfg.OverHTTP {
		c.Net = transport.NewNetwork()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	// Every member is named, and its ports taken, before any starts: each
	// member's configuration names all the peers, and cmd/node's members
	// publish the client URL they listen on.
	for range cfg.Members {
		if _, err := c.NewMember(); err != nil {
			return c, err
		}
	}
	for _, m := range c.Members {
		if err := m.Start(false); err != nil {
			return c, err
		}
	}
	return c, nil
}

// New is Start for a test: it fails t on an error, and stops the cluster
// when the test ends.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// NewMember names the next member (id len(Members)+1) and takes its ports,
// without starting it: to add it, propose it to the cluster with its
// PeerURL, then Start(true).
func (c *Cluster) NewMember() (*Member, error) {
	id := uint64(len(c.Members) + 1)
	m := &Member{ID: id, c: c, DataDir: filepath.Join(c.dir, "member-"+strconv.FormatUint(id, 10))}
	var err error
	if m.apiLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	m.URL = "http://" + m.apiLn.Addr().String()
	if c.cfg.GRPC {
		if m.grpcLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			_ = m.apiLn.Close()
			return nil, err
		}
		m.GRPCAddr = m.grpcLn.Addr().String()
	}
	m.PeerURL = fmt.Sprintf("http://127.0.0.1:%d", 10000+id)
	if c.cfg.OverHTTP {
		if m.peerLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			_ = m.apiLn.Close()
			return nil, err
		}
		m.PeerURL = "http://" + m.peerLn.Addr().String()
	}
	c.Members = append(c.Members, m)
	return m, nil
}

// Member is the member of id.
func (c *Cluster) Member(id uint64) *Member { return c.Members[id-1] }

// Running lists the members that run (whether or not they stopped by
// themselves since), in id order.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, m)
		}
	}
	return out
}

// Running reports whether m was started and not stopped since (it may
// have stopped by itself: Stopped).
func (m *Member) Running() bool { return m.api != nil }

// listen returns m's listener on addr of url: the one taken when m was
// named, or, for a restart, the same port again.
func listen(held *net.Listener, url string) (net.Listener, error) {
	if ln := *held; ln != nil {
		*held = nil
		return ln, nil
	}
	return net.Listen("tcp", strings.TrimPrefix(url, "http://"))
}

// Start runs m from its data dir, made on the first start; join starts a
// member that was added to the running cluster. Every member named so
// far is its peer.
func (m *Member) Start(join bool) error {
	if m.Running() {
		return fmt.Errorf("start member %d: it runs", m.ID)
	}
	c := m.c
	apiLn, err := listen(&m.apiLn, m.URL)
	if err != nil {
		return fmt.Errorf("start member %d: client port: %w", m.ID, err)
	}
	var peerLn net.Listener
	if c.cfg.OverHTTP {
		if peerLn, err = listen(&m.peerLn, m.PeerURL); err != nil {
			_ = apiLn.Close()
			return fmt.Errorf("start member %d: peer port: %w", m.ID, err)
		}
	}
	peers := make(map[uint64]string)
	for _, p := range c.Members {
		peers[p.ID] = p.PeerURL
	}
	lg := c.cfg.Logger.With(zap.Uint64("test_member", m.ID))
	m.tr = nil
	cfg := actors.NodeConfig{
		ID:             m.ID,
		ClusterID:      1,
		Peers:          peers,
		Join:           join,
		DataDir:        m.DataDir,
		ClientURLs:     []string{m.URL},
		TickInterval:   c.cfg.Tick,
		RequestTimeout: c.cfg.RequestTimeout,
		Logger:         lg,
		Transport: func(env actors.TransportEnv) (transport.Transport, error) {
			if c.Net != nil {
				return c.Net.JoinWith(m.ID, env.Inbox, transport.MemoryOptions{
					SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink}), nil
			}
			var err error
			m.tr, err = transport.NewHTTP(transport.HTTPConfig{
				ID: m.ID, ClusterID: env.ClusterID, URL: peers[m.ID], System: env.System, Inbox: env.Inbox,
				SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink,
				Logger: lg.Named("transport"),
			})
			return m.tr, err
		},
	}
	if c.cfg.Tune != nil {
		c.cfg.Tune(&cfg)
	}
	node, err := actors.StartNode(cfg)
	if err != nil {
		_ = apiLn.Close()
		if peerLn != nil {
			_ = peerLn.Close()
		}
		return fmt.Errorf("start member %d: %w", m.ID, err)
	}
	m.Node = node
	m.peer = nil
	if m.tr != nil {
		mux := http.NewServeMux()
		mux.Handle("/raft", m.tr.Handler())
		mux.Handle("/raft/", m.tr.Handler())
		peerAPI := httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{Root: node.Root(), KV: node.KV(),
			ClusterID: node.ClusterID(), Format: cfg.Format, Logger: lg.Named("peer-api")})
		for _, pattern := range httpapi.PeerPatterns() {
			mux.Handle(pattern, peerAPI)
		}
		m.peer = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = m.peer.Serve(peerLn) }() // ends when stop closes the server
	}
	api := httpapi.NewHandler(httpapi.HandlerConfig{
		Root:       node.Root(),
		KV:         node.KV(),
		Raft:       node.Raft(),
		Timeout:    c.cfg.RequestTimeout,
		Format:     cfg.Format,
		PeerClient: &http.Client{Timeout: c.cfg.RequestTimeout},
		ClusterID:  node.ClusterID(),
		Watch:      node.Watch(),
		History:    node.History(),
		Logger:     lg.Named("http"),
	})
	if c.cfg.GRPC {
		if err := m.serveGRPC(node, cfg, lg); err != nil {
			_ = apiLn.Close()
			return errors.Join(err, node.Stop())
		}
	}
	m.api = &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	m.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(apiLn) // ends when Stop closes the server
	}(m.api, m.done)
	return nil
}

// serveGRPC serves etcd's v3 API of node on m's gRPC port, as cmd/node
// configures it.
func (m *Member) serveGRPC(node *actors.Node, cfg actors.NodeConfig, lg *zap.Logger) error {
	ln, err := listen(&m.grpcLn, "http://"+m.GRPCAddr)
	if err != nil {
		return fmt.Errorf("start member %d: gRPC port: %w", m.ID, err)
	}
	m.grpc = etcdapi.New(etcdapi.Config{
		Root: node.Root(), KV: node.KV(), Raft: node.Raft(), Watch: node.Watch(), History: node.History(),
		ClusterID: node.ClusterID(), MemberID: m.ID, Format: cfg.Format,
		PeerClient: &http.Client{Timeout: m.c.cfg.RequestTimeout}, Snapshot: node.State(), Quota: cfg.Quota,
		Timeout: m.c.cfg.RequestTimeout, Logger: lg.Named("etcdapi"),
	}).NewGRPCServer()
	go func(g *grpc.Server) { _ = g.Serve(ln) }(m.grpc) // ends when Stop stops it
	return nil
}

// Stopped says why m stopped by itself (a fatal error, or its removal from
// the cluster), or nil while it runs or after Stop.
func (m *Member) Stopped() error {
	if !m.Running() {
		return nil
	}
	select {
	case <-m.Node.Done():
		if err := m.Node.Err(); err != nil {
			return err
		}
		return errors.New("stopped")
	default:
		return nil
	}
}

// Stop ends m's watches, its client API, its peer port and its actors.
// Stopping a member that does not run does nothing.
func (m *Member) Stop() error {
	if !m.Running() {
		return nil
	}
	var errs []error
	select {
	case <-m.Node.Done(): // stopped by itself: its hub ended the watches
	default:
		if err := m.Node.StopWatches(); err != nil {
			errs = append(errs, err)
		}
	}
	if m.grpc != nil {
		m.grpc.Stop() // ends the streams too, as Close below does for HTTP
		m.grpc = nil
	}
	// Close, not Shutdown: the requests in flight end with the member,
	// and a client's endless stream must not hold the stop.
	if err := m.api.Close(); err != nil {
		errs = append(errs, err)
	}
	<-m.done
	m.api = nil
	if m.peer != nil {
		// Close, not Shutdown: peer streams are endless responses too.
		if err := m.peer.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.Node.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("member %d: %w", m.ID, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop member %d: %w", m.ID, err)
	}
	return nil
}

// Restart stops m and starts it again from its data dir.
func (m *Member) Restart() error {
	if err := m.Stop(); err != nil {
		return err
	}
	return m.Start(false)
}

// Stop stops every member and removes the data dirs it made. Stopping a
// stopped cluster does nothing.
func (c *Cluster) Stop() error {
	var errs []error
	for _, m := range c.Members {
		if err := m.Stop(); err != nil {
			errs = append(errs, err)
		}
		for _, ln := range []net.Listener{m.apiLn, m.peerLn, m.grpcLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		m.apiLn, m.peerLn, m.grpcLn = nil, nil, nil
	}
	c.client.CloseIdleConnections()
	if c.tempDir {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
		c.tempDir = false
	}
	return errors.Join(errs...)
}

// Stopped lists, for each running member that stopped by itself, why.
func (c *Cluster) Stopped() error {
	var errs []error
	for _, m := range c.Members {
		if err := m.Stopped(); err != nil {
			errs = append(errs, fmt.Errorf("member %d stopped: %w", m.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Reply is a member's answer.
type Reply struct {
	Code int
	Body string
}

// Do sends a request to m's client API; an error means no answer came.
func (c *Cluster) Do(m *Member, method, path, body string) (Reply, error) {
	req, err := http.NewRequest(method, m.URL+path, strings.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s on member %d: %w", method, path, m.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s on member %d: %w", method, path, m.ID, err)
	}
	return Reply{Code: resp.StatusCode, Body: string(b)}, nil
}

// getJSON GETs path from m's client API and decodes the 200 answer.
func (c *Cluster) getJSON(m *Member, path string, v any) error {
	r, err := c.Do(m, http.MethodGet, path, "")
	if err != nil {
		return err
	}
	if r.Code != http.StatusOK {
		return fmt.Errorf("GET %s on member %d: %d %s", path, m.ID, r.Code, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		return fmt.Errorf("GET %s on member %d: %w in %q", path, m.ID, err, r.Body)
	}
	return nil
}

// Status is m's /v1/status.
func (c *Cluster) Status(m *Member) (messages.Status, error) {
	var st messages.Status
	err := c.getJSON(m, "/v1/status", &st)
	return st, err
}

// Digest is m's /v1/digest: the digest of its applied state and the index
// it was taken at.
func (c *Cluster) Digest(m *Member) (messages.Digest, error) {
	var d messages.Digest
	err := c.getJSON(m, "/v1/digest", &d)
	return d, err
}

// MemberList is m's /v1/members.
func (c *Cluster) MemberList(m *Member) ([]messages.Member, error) {
	var body struct {
		Members []messages.Member `json:"members"`
	}
	err := c.getJSON(m, "/v1/members", &body)
	return body.Members, err
}

// SnapshotsSent counts the snapshots delivered: over the in-memory
// network, all of them; over HTTP, those the running members sent in
// their current runs.
func (c *Cluster) SnapshotsSent() uint64 {
	if c.Net != nil {
		return uint64(c.Net.Delivered(raftpb.MsgSnap))
	}
	var n uint64
	for _, m := range c.Running() {
		if m.tr != nil {
			for _, s := range m.tr.Stats() {
				n += s.SnapshotsSent
			}
		}
	}
	return n
}

// WaitLeader waits until every running member names the same leader, one
// of them, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) (*Member, error) {
	var lead *Member
	err := testutil.Poll(timeout, c.cfg.Tick, func() error {
		if err := c.Stopped(); err != nil {
			return err
		}
		lead = nil
		var id uint64
		running := c.Running()
		for _, m := range running {
			st, err := c.Status(m)
			if err != nil {
				return err
			}
			if st.Leader == 0 || (id != 0 && st.Leader != id) {
				return fmt.Errorf("member %d names leader %d, another %d", m.ID, st.Leader, id)
			}
			id = st.Leader
		}
		for _, m := range running {
			if m.ID == id {
				lead = m
				return nil
			}
		}
		return fmt.Errorf("the leader %d is not a running member of the cluster", id)
	})
	return lead, err
}

// ErrDiverged is returned by Converged when two members that applied the
// same index hold different states: the replicated state machine diverged.
var ErrDiverged = errors.New("members diverged")

// Converged waits until every running member has applied the same index,
// then compares their digests at that index: ErrDiverged when they differ.
// It fails once timeout passes without the members reaching one index (or
// with one of them stopped).
func (c *Cluster) Converged(timeout time.Duration) (messages.Digest, error) {
	var at messages.Digest
	var diverged error
	err := testutil.Poll(timeout, 5*time.Millisecond, func() error {
		if err := c.Stopped(); err != nil {
			return err
		}
		running := c.Running()
		if len(running) == 0 {
			return errors.New("no member runs")
		}
		ds := make([]messages.Digest, len(running))
		for i, m := range running {
			d, err := c.Digest(m)
			if err != nil {
				return err
			}
			ds[i] = d
		}
		for i, d := range ds[1:] {
			if d.Index != ds[0].Index {
				return fmt.Errorf("members applied different indexes: %d at %d, %d at %d",
					running[0].ID, ds[0].Index, running[i+1].ID, d.Index)
			}
		}
		at = ds[0]
		for i, d := range ds[1:] {
			if d != at {
				diverged = fmt.Errorf("%w at index %d: member %d has %d keys, sha256 %s; member %d has %d keys, sha256 %s",
					ErrDiverged, d.Index, running[0].ID, at.Keys, at.Sum, running[i+1].ID, d.Keys, d.Sum)
			}
		}
		return nil
	})
	if err != nil {
		return at, err
	}
	return at, diverged
}
