package e2e

import (
	"errors"
	"fmt"
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

// member is one cmd/node of a test cluster. Its ports and data dir stay the
// same across restarts; each run is a new proc.
type member struct {
	id      uint64
	peerURL string
	base    string // client API, <scheme>://127.0.0.1:<port>
	port    int
	dataDir string
	args    []string       // of the last start, reused by restart
	p       *nodeproc.Proc // the current or last run; nil before the first start
}

func (m *member) name() string { return fmt.Sprintf("node %d", m.id) }

// cluster is a set of cmd/node processes. Ids are 1..N in the order of
// peerURLs, the --cluster order.
type cluster struct {
	t       *testing.T
	dir     string
	flags   []string // given to every member
	opts    clusterOpts
	members []*member
}

// clusterOpts shape a cluster beyond flags common to all members.
type clusterOpts struct {
	// scheme of the peer and client URLs; "" is http.
	scheme string
	// memberFlags are flags of one member (its certificates, say).
	memberFlags func(m *member) []string
	// client, when set, is what the test's calls to the members use
	// (registered for their client URLs: see clientFor).
	client *http.Client
	// bin is the members' binary; "" is cmd/node (nodeproc.Node).
	bin string
	// memberEnv is added to one member's environment.
	memberEnv func(m *member) []string
}

// newCluster starts n members with the extra flags and waits until all of
// them agree on a leader.
func newCluster(t *testing.T, n int, flags ...string) *cluster {
	t.Helper()
	return newClusterWith(t, n, clusterOpts{}, flags...)
}

// newClusterWith is newCluster with options.
func newClusterWith(t *testing.T, n int, opts clusterOpts, flags ...string) *cluster {
	t.Helper()
	c := newStoppedCluster(t, n, opts, flags...)
	for _, m := range c.members {
		c.start(m, false)
	}
	c.leader(c.members...)
	return c
}

// newStoppedCluster is the cluster of newClusterWith before any member
// starts: ports and data dirs are set, nothing runs.
func newStoppedCluster(t *testing.T, n int, opts clusterOpts, flags ...string) *cluster {
	if opts.scheme == "" {
		opts.scheme = "http"
	}
	c := &cluster{t: t, dir: t.TempDir(), flags: flags, opts: opts}
	for range n {
		c.newMember()
	}
	return c
}

// newMember adds a member with fresh ports to the cluster's list without
// starting it.
func (c *cluster) newMember() *member {
	// Ports are never handed out twice: a member not started yet, or
	// down, keeps its own.
	ports := testutil.FreePorts(c.t, 2)
	id := uint64(len(c.members) + 1)
	m := &member{
		id:      id,
		peerURL: fmt.Sprintf("%s://127.0.0.1:%d", c.opts.scheme, ports[0]),
		port:    ports[1],
		base:    fmt.Sprintf("%s://127.0.0.1:%d", c.opts.scheme, ports[1]),
		dataDir: filepath.Join(c.dir, "node-"+strconv.FormatUint(id, 10)),
	}
	if c.opts.client != nil {
		registerClient(c.t, m.base, c.opts.client)
	}
	c.members = append(c.members, m)
	return m
}

func (c *cluster) member(id uint64) *member { return c.members[id-1] }

// clusterFlag is --cluster: every member's peer URL in id order.
func (c *cluster) clusterFlag() string {
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = m.peerURL
	}
	return strings.Join(urls, ",")
}

// start runs m with the current member list; join starts a member that was
// added with POST /<id>.
func (c *cluster) start(m *member, join bool) {
	m.args = []string{
		"--id", strconv.FormatUint(m.id, 10),
		"--cluster", c.clusterFlag(),
		"--data-dir", m.dataDir,
	}
	if c.opts.scheme == "http" {
		m.args = append(m.args, "--port", strconv.Itoa(m.port))
	} else {
		m.args = append(m.args, "--listen-client-urls", m.base)
	}
	m.args = append(m.args, c.flags...)
	if c.opts.memberFlags != nil {
		m.args = append(m.args, c.opts.memberFlags(m)...)
	}
	if join {
		m.args = append(m.args, "--join")
	}
	m.p = c.run(m)
}

// run starts a run of m with the arguments of its last start.
func (c *cluster) run(m *member) *nodeproc.Proc {
	c.t.Helper()
	cmd := nodeproc.Cmd{Name: m.name(), Bin: c.opts.bin, Args: m.args}
	if cmd.Bin == "" {
		cmd.Bin = nodeproc.Node(c.t)
	}
	if c.opts.memberEnv != nil {
		cmd.Env = c.opts.memberEnv(m)
	}
	return nodeproc.StartT(c.t, cmd)
}

// restart runs m again from its data dir with the arguments of its last start.
func (c *cluster) restart(m *member) {
	if m.p.Running() {
		c.t.Fatalf("restart of %s, which is still running", m.name())
	}
	m.p = c.run(m)
}

// others is every member but the given ones.
func (c *cluster) others(not ...*member) []*member {
	var out []*member
	for _, m := range c.members {
		if !slices.Contains(not, m) {
			out = append(out, m)
		}
	}
	return out
}

// leader waits until every member in among reports the same leader, that
// leader is one of them and it reports itself as leader.
func (c *cluster) leader(among ...*member) *member {
	c.t.Helper()
	var lead *member
	testutil.Eventually(c.t, 20*time.Second, "agree on a leader", func() error {
		var id uint64
		for _, m := range among {
			if !m.p.Running() {
				c.t.Fatalf("%s exited while waiting for a leader", m.name())
			}
			st, err := getStatus(m.base)
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return errors.New(m.name() + " knows no leader")
			}
			if id != 0 && st.Leader != id {
				return fmt.Errorf("%s says the leader is %d, another says %d", m.name(), st.Leader, id)
			}
			id = st.Leader
		}
		i := slices.IndexFunc(among, func(m *member) bool { return m.id == id })
		if i < 0 {
			return fmt.Errorf("the leader %d is not among the members asked", id)
		}
		st, err := getStatus(among[i].base)
		if err != nil {
			return err
		}
		if st.RaftState != "StateLeader" {
			return fmt.Errorf("%s is named leader but is %s", among[i].name(), st.RaftState)
		}
		lead = among[i]
		return nil
	})
	return lead
}
