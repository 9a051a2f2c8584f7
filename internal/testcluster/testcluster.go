// Package testcluster runs the members of a cluster in the test's own
// process, each wired as cmd/node wires it: its actors (actors.StartNode),
// its client API (httpapi) on a loopback port as the server's handler, as
// cmd/node serves it (so no path is cleaned or redirected on the way, as in
// production), and, over HTTP, its peer port serving the
// raft transport and the peer API. The peers talk over the HTTP transport
// on loopback (OverHTTP) or over an in-memory network. Only tests import
// it.
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
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/httpapi"
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
	// Logger gets the members' logs; nil discards them.
	Logger *zap.Logger
	// Tune, if set, changes each member's configuration before it starts.
	Tune func(*actors.NodeConfig)
}

// Defaults of Config.
const (
	DefaultMembers        = 3
	DefaultTick           = 20 * time.Millisecond
	DefaultRequestTimeout = 2 * time.Second
)

// Cluster is a running set of members.
type Cluster struct {
	cfg     Config
	dir     string
	tempDir bool
	net     *transport.Network // nil over HTTP
	// Members are the founding members, Members[i] with id i+1.
	Members []*Member
	client  *http.Client
}

// Member is one member of a Cluster.
type Member struct {
	ID uint64
	// URL is the client API's base URL, http://127.0.0.1:<port>.
	URL string
	// PeerURL is the member's peer URL (made up over the in-memory
	// network).
	PeerURL string
	Node    *actors.Node

	api  *http.Server
	peer *http.Server // over HTTP only
	done chan struct{}
}

// Start starts the cluster's members and returns once each of them serves
// its client API; they may not have elected a leader yet (WaitLeader).
// On an error every member started is stopped again.
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
	}
	c = &Cluster{cfg: cfg, dir: cfg.Dir, client: &http.Client{Timeout: 2 * cfg.RequestTimeout}}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "raftkv-testcluster-"); err != nil {
			return nil, err
		}
		c.tempDir = true
	}
	if !cfg.OverHTTP {
		c.net = transport.NewNetwork()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()

	// Every port is taken before any member starts: each member's
	// configuration names all the peers, and cmd/node's members publish
	// the client URL they listen on.
	peers := make(map[uint64]string)
	peerLns := make(map[uint64]net.Listener)
	apiLns := make(map[uint64]net.Listener)
	closeAll := func() {
		for _, ln := range peerLns {
			_ = ln.Close()
		}
		for _, ln := range apiLns {
			_ = ln.Close()
		}
	}
	for id := uint64(1); id <= uint64(cfg.Members); id++ {
		api, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return c, err
		}
		apiLns[id] = api
		peers[id] = fmt.Sprintf("http://127.0.0.1:%d", 10000+id)
		if cfg.OverHTTP {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				closeAll()
				return c, err
			}
			peerLns[id] = ln
			peers[id] = "http://" + ln.Addr().String()
		}
	}
	for id := uint64(1); id <= uint64(cfg.Members); id++ {
		m, err := c.start(id, peers, apiLns[id], peerLns[id])
		delete(apiLns, id)
		delete(peerLns, id)
		if err != nil {
			closeAll()
			return c, fmt.Errorf("start member %d: %w", id, err)
		}
		c.Members = append(c.Members, m)
	}
	return c, nil
}

// start runs member id, whose client API listens on apiLn and, over HTTP,
// whose peer port listens on peerLn. It owns both listeners from here on.
func (c *Cluster) start(id uint64, peers map[uint64]string, apiLn, peerLn net.Listener) (*Member, error) {
	m := &Member{ID: id, URL: "http://" + apiLn.Addr().String(), PeerURL: peers[id], done: make(chan struct{})}
	lg := c.cfg.Logger.With(zap.Uint64("test_member", id))
	var tr *transport.HTTP
	cfg := actors.NodeConfig{
		ID:             id,
		ClusterID:      1,
		Peers:          peers,
		DataDir:        filepath.Join(c.dir, "member-"+strconv.FormatUint(id, 10)),
		ClientURLs:     []string{m.URL},
		TickInterval:   c.cfg.Tick,
		RequestTimeout: c.cfg.RequestTimeout,
		Logger:         lg,
		Transport: func(env actors.TransportEnv) (transport.Transport, error) {
			if c.net != nil {
				return c.net.JoinWith(id, env.Inbox, transport.MemoryOptions{
					SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink}), nil
			}
			var err error
			tr, err = transport.NewHTTP(transport.HTTPConfig{
				ID: id, ClusterID: env.ClusterID, URL: peers[id], System: env.System, Inbox: env.Inbox,
				SnapshotSource: env.SnapshotSource, SnapshotSink: env.SnapshotSink,
				Logger: lg.Named("transport"),
			})
			return tr, err
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
		return nil, err
	}
	m.Node = node
	if tr != nil {
		mux := http.NewServeMux()
		mux.Handle("/raft", tr.Handler())
		mux.Handle("/raft/", tr.Handler())
		peerAPI := httpapi.NewPeerHandler(httpapi.PeerHandlerConfig{Root: node.Root(), KV: node.KV(),
			ClusterID: node.ClusterID(), Format: cfg.Format, Logger: lg.Named("peer-api")})
		mux.Handle("/members", peerAPI)
		mux.Handle("/members/", peerAPI)
		m.peer = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = m.peer.Serve(peerLn) }() // ends when Stop closes the server
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
	m.api = &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(m.done)
		_ = m.api.Serve(apiLn) // ends when Stop shuts the server down
	}()
	return m, nil
}

// Stopped says why m stopped by itself (a fatal error, or its removal from
// the cluster), or nil while it runs.
func (m *Member) Stopped() error {
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

// stop ends m's watches, its client API, its peer port and its actors.
func (m *Member) stop() error {
	var errs []error
	if err := m.Node.StopWatches(); err != nil {
		errs = append(errs, err)
	}
	// Close, not Shutdown: the requests in flight end with the member,
	// and a client's endless stream must not hold the stop.
	if err := m.api.Close(); err != nil {
		errs = append(errs, err)
	}
	<-m.done
	if m.peer != nil {
		if err := m.peer.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.Node.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("member %d: %w", m.ID, err))
	}
	return errors.Join(errs...)
}

// Stop stops every member and removes the data dirs it made. Stopping a
// stopped cluster does nothing.
func (c *Cluster) Stop() error {
	var errs []error
	for _, m := range c.Members {
		if err := m.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	c.Members = nil
	c.client.CloseIdleConnections()
	if c.tempDir {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
		c.tempDir = false
	}
	return errors.Join(errs...)
}

// Stopped lists, for each member that stopped by itself, why.
func (c *Cluster) Stopped() error {
	var errs []error
	for _, m := range c.Members {
		if err := m.Stopped(); err != nil {
			errs = append(errs, fmt.Errorf("member %d stopped: %w", m.ID, err))
		}
	}
	return errors.Join(errs...)
}

// getJSON GETs path from m's client API and decodes the 200 answer.
func (c *Cluster) getJSON(m *Member, path string, v any) error {
	resp, err := c.client.Get(m.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s on member %d: %w", path, m.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on member %d: %d %s", path, m.ID, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s on member %d: %w in %q", path, m.ID, err, body)
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

// poll calls try every interval until it returns nil or the deadline
// passes; then it returns try's last error.
func poll(deadline time.Time, interval time.Duration, try func() error) error {
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval) // polling interval, not synchronization
	}
}

// WaitLeader waits until every member names the same leader, one of them,
// and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) (*Member, error) {
	var lead *Member
	err := poll(time.Now().Add(timeout), c.cfg.Tick, func() error {
		if err := c.Stopped(); err != nil {
			return err
		}
		lead = nil
		var id uint64
		for _, m := range c.Members {
			st, err := c.Status(m)
			if err != nil {
				return err
			}
			if st.Leader == 0 || (id != 0 && st.Leader != id) {
				return fmt.Errorf("member %d names leader %d, another %d", m.ID, st.Leader, id)
			}
			id = st.Leader
		}
		for _, m := range c.Members {
			if m.ID == id {
				lead = m
				return nil
			}
		}
		return fmt.Errorf("the leader %d is not a member of the cluster", id)
	})
	return lead, err
}

// ErrDiverged is returned by Converged when two members that applied the
// same index hold different states: the replicated state machine diverged.
var ErrDiverged = errors.New("members diverged")

// Converged waits until every member has applied the same index, then
// compares their digests at that index: ErrDiverged when they differ. It
// fails once timeout passes without the members reaching one index (or
// with one of them stopped).
func (c *Cluster) Converged(timeout time.Duration) (messages.Digest, error) {
	var at messages.Digest
	var diverged error
	err := poll(time.Now().Add(timeout), 5*time.Millisecond, func() error {
		if err := c.Stopped(); err != nil {
			return err
		}
		ds := make([]messages.Digest, len(c.Members))
		for i, m := range c.Members {
			d, err := c.Digest(m)
			if err != nil {
				return err
			}
			ds[i] = d
		}
		for i, d := range ds[1:] {
			if d.Index != ds[0].Index {
				return fmt.Errorf("members applied different indexes: %d at %d, %d at %d",
					c.Members[0].ID, ds[0].Index, c.Members[i+1].ID, d.Index)
			}
		}
		at = ds[0]
		for i, d := range ds[1:] {
			if d != at {
				diverged = fmt.Errorf("%w at index %d: member %d has %d keys, sha256 %s; member %d has %d keys, sha256 %s",
					ErrDiverged, d.Index, c.Members[0].ID, at.Keys, at.Sum, c.Members[i+1].ID, d.Keys, d.Sum)
			}
		}
		return nil
	})
	if err != nil {
		return at, err
	}
	return at, diverged
}
