// Package nodecluster runs a cluster of cmd/node processes on 127.0.0.1
// for tests that drive it from outside, as its users do: etcd's own
// clients (etcdctl in e2e, clientv3 in the nested module interop/etcd).
// Members are started with `id=URL` entries in --cluster, so that a
// member added under an id etcd's MemberAdd chose (a random one) starts
// like any other. Each member's ports and data dir stay the same across
// restarts. Every process is killed and reaped when the test ends
// (nodeproc.StartT); a package that uses it passes nodeproc.Cleanup and
// CloseIdleConnections to testutil.Main. Only tests import it.
package nodecluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// Member is one cmd/node of a cluster.
type Member struct {
	ID      uint64
	PeerURL string // http://127.0.0.1:<peer port>
	// ClientURL is http://127.0.0.1:<Port>: the HTTP API, etcd's gRPC API
	// and etcd's JSON gateway.
	ClientURL string
	Port      int
	DataDir   string
	Args      []string       // of the last start, reused by Restart
	Proc      *nodeproc.Proc // the current or last run; nil before the first start
}

// Name names the member in messages.
func (m *Member) Name() string { return "node " + strconv.FormatUint(m.ID, 10) }

// Endpoint is the member's client address as etcd's clients take it:
// host:port.
func (m *Member) Endpoint() string { return strings.TrimPrefix(m.ClientURL, "http://") }

// Running reports whether the member's process runs.
func (m *Member) Running() bool { return m.Proc != nil && m.Proc.Running() }

// Cluster is a set of cmd/node processes.
type Cluster struct {
	t       testing.TB
	dir     string
	flags   []string
	Members []*Member
}

// Startup bounds how long a cluster may take to agree on a leader.
const Startup = 30 * time.Second

// Start starts n members (ids 1..n), each with flags, and waits until all
// of them agree on a leader.
func Start(t testing.TB, n int, flags ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir(), flags: flags}
	for i := range n {
		c.NewMember(uint64(i + 1))
	}
	for _, m := range c.Members {
		c.StartMember(m, false)
	}
	c.Leader(c.Members...)
	return c
}

// NewMember adds a member with id and fresh ports to the cluster's list
// without starting it: add it to the cluster first (etcdctl member add,
// MemberAdd), then StartMember(m, true).
func (c *Cluster) NewMember(id uint64) *Member {
	ports := testutil.FreePorts(c.t, 2)
	m := &Member{
		ID:        id,
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		Port:      ports[1],
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		DataDir:   filepath.Join(c.dir, "node-"+strconv.FormatUint(id, 10)),
	}
	c.Members = append(c.Members, m)
	return m
}

// Forget drops m from the list the next --cluster is made of (a member
// removed from the cluster). Its process is left as it is.
func (c *Cluster) Forget(m *Member) {
	c.Members = slices.DeleteFunc(c.Members, func(o *Member) bool { return o == m })
}

// ClusterFlag is --cluster: id=URL of every member of the list.
func (c *Cluster) ClusterFlag() string {
	entries := make([]string, len(c.Members))
	for i, m := range c.Members {
		entries[i] = fmt.Sprintf("%d=%s", m.ID, m.PeerURL)
	}
	return strings.Join(entries, ",")
}

// StartMember runs m with the current member list; join starts a member
// that was added to the running cluster.
func (c *Cluster) StartMember(m *Member, join bool) {
	c.t.Helper()
	m.Args = []string{
		"--id", strconv.FormatUint(m.ID, 10),
		"--cluster", c.ClusterFlag(),
		"--data-dir", m.DataDir,
		"--port", strconv.Itoa(m.Port),
	}
	m.Args = append(m.Args, c.flags...)
	if join {
		m.Args = append(m.Args, "--join")
	}
	m.Proc = nodeproc.StartT(c.t, nodeproc.Cmd{Name: m.Name(), Bin: nodeproc.Node(c.t), Args: m.Args})
}

// Restart runs m again from its data dir with the arguments of its last
// start.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	if m.Running() {
		c.t.Fatalf("restart of %s, which is still running", m.Name())
	}
	m.Proc = nodeproc.StartT(c.t, nodeproc.Cmd{Name: m.Name(), Bin: nodeproc.Node(c.t), Args: m.Args})
}

// Kill kills m with SIGKILL and waits until it is reaped.
func (c *Cluster) Kill(m *Member) {
	c.t.Helper()
	if err := m.Proc.Kill(); err != nil {
		c.t.Fatal(err)
	}
}

// Stop stops m with SIGTERM (a leader hands leadership over first) and
// waits until it exits.
func (c *Cluster) Stop(m *Member) {
	c.t.Helper()
	if err := m.Proc.Stop(20 * time.Second); err != nil {
		c.t.Fatal(err)
	}
}

// Member is the member with id; nil if the list has none.
func (c *Cluster) Member(id uint64) *Member {
	i := slices.IndexFunc(c.Members, func(m *Member) bool { return m.ID == id })
	if i < 0 {
		return nil
	}
	return c.Members[i]
}

// Others is every member of the list but the given ones.
func (c *Cluster) Others(not ...*Member) []*Member {
	var out []*Member
	for _, m := range c.Members {
		if !slices.Contains(not, m) {
			out = append(out, m)
		}
	}
	return out
}

// Endpoints is the etcd endpoints (host:port) of ms, or of every member
// when ms is empty.
func (c *Cluster) Endpoints(ms ...*Member) []string {
	if len(ms) == 0 {
		ms = c.Members
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Endpoint()
	}
	return out
}

// Status is a member's GET /v1/status.
type Status struct {
	ID        uint64            `json:"id"`
	Leader    uint64            `json:"leader"`
	Term      uint64            `json:"term"`
	RaftState string            `json:"raft_state"`
	Commit    uint64            `json:"commit_index"`
	Applied   uint64            `json:"applied_index"`
	Members   map[uint64]string `json:"members"`
}

// client keeps no connection, so that none outlives a test.
var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// CloseIdleConnections closes the idle connections of the package's HTTP
// client (it keeps none); for testutil.Main's list, for symmetry.
func CloseIdleConnections() { client.CloseIdleConnections() }

// GetStatus asks m for its status.
func GetStatus(m *Member) (Status, error) {
	resp, err := client.Get(m.ClientURL + "/v1/status")
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Status{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("GET %s/v1/status: %s %q", m.ClientURL, resp.Status, b)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("GET %s/v1/status: %w in %q", m.ClientURL, err, b)
	}
	return st, nil
}

// Leader waits until every member in among reports the same leader, that
// leader is one of them and it reports itself as leader; among empty is
// every running member.
func (c *Cluster) Leader(among ...*Member) *Member {
	c.t.Helper()
	if len(among) == 0 {
		for _, m := range c.Members {
			if m.Running() {
				among = append(among, m)
			}
		}
	}
	var lead *Member
	testutil.Eventually(c.t, Startup, "agree on a leader", func() error {
		var id uint64
		for _, m := range among {
			if !m.Running() {
				c.t.Fatalf("%s exited while waiting for a leader; output:\n%s", m.Name(), testutil.Tail(m.Proc.Output(), 30))
			}
			st, err := GetStatus(m)
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return errors.New(m.Name() + " knows no leader")
			}
			if id != 0 && st.Leader != id {
				return fmt.Errorf("%s says the leader is %d, another says %d", m.Name(), st.Leader, id)
			}
			id = st.Leader
		}
		i := slices.IndexFunc(among, func(m *Member) bool { return m.ID == id })
		if i < 0 {
			return fmt.Errorf("the leader %d is not among the members asked", id)
		}
		st, err := GetStatus(among[i])
		if err != nil {
			return err
		}
		if st.RaftState != "StateLeader" {
			return fmt.Errorf("%s is named leader but is %s", among[i].Name(), st.RaftState)
		}
		lead = among[i]
		return nil
	})
	return lead
}

// WaitApplied waits until every member of ms has applied at least index.
func (c *Cluster) WaitApplied(index uint64, ms ...*Member) {
	c.t.Helper()
	testutil.Eventually(c.t, Startup, fmt.Sprintf("members applying index %d", index), func() error {
		for _, m := range ms {
			st, err := GetStatus(m)
			if err != nil {
				return err
			}
			if st.Applied < index {
				return fmt.Errorf("%s applied %d", m.Name(), st.Applied)
			}
		}
		return nil
	})
}
