package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/raftkv/node/internal/failpoint"
	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// failpoints are the names scripts/build-failpoints.sh compiles in, as
// gofail's GET / lists them (sorted); the README lists them too.
var failpoints = []string{
	"kvAfterCommitBeforeSnap",
	"kvBeforeApply",
	"kvBeforeCommit",
	"peerBeforeSend",
	"raftBeforeReady",
	"snapBeforeSave",
	"walBeforeSync",
	"watchBeforeDispatch",
}

// failpointNode is cmd/node built with its failpoints. The build fetches
// gofail from the Go module proxy on a machine that has never fetched it:
// that, and nothing else, may skip the test.
func failpointNode(t *testing.T) string {
	t.Helper()
	bin, err := nodeproc.FailpointNode()
	if err != nil {
		if nodeproc.Offline(err) {
			t.Skipf("cmd/node with failpoints cannot be built without the Go module proxy: %v", err)
		}
		t.Fatalf("build cmd/node with failpoints: %v", err)
	}
	return bin
}

// newGofailCluster starts n members of bin, each with gofail's HTTP
// endpoint asked for on a port of its own (GOFAIL_HTTP), and returns the
// cluster and each member's endpoint, host:port by member id.
func newGofailCluster(t *testing.T, n int, bin string, flags ...string) (*cluster, map[uint64]string) {
	t.Helper()
	endpoints := make(map[uint64]string, n)
	for i, p := range testutil.FreePorts(t, n) {
		endpoints[uint64(i+1)] = "127.0.0.1:" + strconv.Itoa(p)
	}
	c := newClusterWith(t, n, clusterOpts{
		bin:       bin,
		memberEnv: func(m *member) []string { return []string{"GOFAIL_HTTP=" + endpoints[m.id]} },
	}, flags...)
	return c, endpoints
}

// setFailpoint switches a failpoint of the member whose gofail endpoint is
// at addr to term.
func setFailpoint(t *testing.T, addr, name, term string) {
	t.Helper()
	if err := (failpoint.Client{Addr: addr}).Set(name, term); err != nil {
		t.Fatal(err)
	}
}

// clearFailpoint switches a failpoint off.
func clearFailpoint(t *testing.T, addr, name string) {
	t.Helper()
	if err := (failpoint.Client{Addr: addr}).Clear(name); err != nil {
		t.Fatal(err)
	}
}

// failpointCount is how many times a failpoint's term was evaluated since
// it was last set.
func failpointCount(t *testing.T, addr, name string) int {
	t.Helper()
	n, err := (failpoint.Client{Addr: addr}).Count(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The failpoint build opens gofail's endpoint and has every failpoint, all
// off; the normal build ignores GOFAIL_HTTP: nothing listens there once the
// member serves (gofail's runtime would have opened it before main ran).
func TestFailpointsOnlyInTheFailpointBuild(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bin        func(t *testing.T) string
		failpoints bool
	}{
		{"failpoint build", failpointNode, true},
		{"normal build", func(t *testing.T) string { return nodeproc.Node(t) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, endpoints := newGofailCluster(t, 1, tc.bin(t))
			r := call(http.MethodGet, "http://"+endpoints[1]+"/", "")
			if !tc.failpoints {
				if !errors.Is(r.err, syscall.ECONNREFUSED) {
					t.Fatalf("GET / at GOFAIL_HTTP of the normal build: %s, want the connection refused", r)
				}
				return
			}
			if r.err != nil || r.code != http.StatusOK {
				t.Fatalf("GET / at GOFAIL_HTTP: %s, want 200", r)
			}
			var want strings.Builder
			for _, name := range failpoints {
				fmt.Fprintf(&want, "%s=\n", name) // "=" and no term: off
			}
			if r.body != want.String() {
				t.Fatalf("failpoints listed:\n%s\nwant:\n%s", r.body, want.String())
			}
		})
	}
}

// A panic injected at walBeforeSync on a follower, while clients write
// through every member, stops that member with exit 1 (the wal actor is
// never restarted: an fsync that failed cannot be retried); the other two
// go on acknowledging writes and serve every write acknowledged before and
// after; the member restarts from its data dir and serves them too.
func TestFailpointWALPanicStopsTheMember(t *testing.T) {
	c, endpoints := newGofailCluster(t, 3, failpointNode(t))
	lead := c.leader(c.members...)
	f := c.others(lead)[0]
	w := startWriters(t, "fp-wal", c.members...)
	w.waitAcked(t, 30, 20*time.Second)

	setFailpoint(t, endpoints[f.id], "walBeforeSync", `panic("injected")`)
	set := time.Now()
	f.p.WaitExit(t, 1, 20*time.Second)
	t.Logf("%s exited %v after the failpoint was set", f.name(), time.Since(set).Round(time.Millisecond))
	if !strings.Contains(f.p.Output(), "injected") {
		t.Fatalf("%s exited 1 without a word of the injected panic:\n%s", f.name(), testutil.Tail(f.p.Output(), 20))
	}
	survivors := c.others(f)
	stopped := w.count()
	w.waitAcked(t, stopped+30, 20*time.Second)
	w.halt()
	acked := w.snapshot()
	t.Logf("%d writes acknowledged, %d of them before %s stopped", len(acked), stopped, f.name())
	checkAll(t, acked, survivors...)

	c.restart(f) // failpoints start off
	checkAll(t, acked, f)
	c.leader(c.members...)
}

// A member that stops by itself closes its client API at once rather than
// waiting for the calls in flight: they can only be told it stopped. With a
// lease keep-alive stream open, which lasts as long as its client, the
// graceful stop waited grpcStopTimeout (2 s) for it, and meanwhile the HTTP
// server answered every request "stopped". The bound below is that wait:
// the member exits in milliseconds otherwise.
func TestFailpointWALPanicDoesNotWaitForClientStreams(t *testing.T) {
	const gracefulWait = 2 * time.Second // cmd/node's grpcStopTimeout
	c, endpoints := newGofailCluster(t, 3, failpointNode(t))
	f := c.others(c.leader(c.members...))[0]
	conn, err := grpc.NewClient(strings.TrimPrefix(f.base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lease, err := pb.NewLeaseClient(conn).LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	keepAlive, err := pb.NewLeaseClient(conn).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := keepAlive.Send(&pb.LeaseKeepAliveRequest{ID: lease.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := keepAlive.Recv(); err != nil {
		t.Fatalf("the keep-alive stream to %s: %v", f.name(), err)
	}

	setFailpoint(t, endpoints[f.id], "walBeforeSync", `panic("injected")`)
	set := time.Now()
	if r := call(http.MethodPut, f.base+"/v1/kv/fp-stream", "x"); r.ok() {
		t.Fatalf("a write through %s with its WAL failing: %s", f.name(), r)
	}
	f.p.WaitExit(t, 1, 20*time.Second)
	if took := time.Since(set); took >= gracefulWait {
		t.Fatalf("%s exited %v after its WAL failed: its client API waited for the open keep-alive stream", f.name(), took.Round(time.Millisecond))
	}
}

// sleep(100) at kvBeforeApply on a follower delays every apply there by
// 100 ms and fails nothing: a write through that member, answered only
// once it applied the write, takes at least that long and succeeds, and
// it reads back through every member; switched off, the member goes on.
func TestFailpointSleepSlowsApplies(t *testing.T) {
	c, endpoints := newGofailCluster(t, 3, failpointNode(t))
	lead := c.leader(c.members...)
	f := c.others(lead)[0]
	addr := endpoints[f.id]

	// The failpoint's term, and so the least a write through f waits.
	const delay = 100 * time.Millisecond
	setFailpoint(t, addr, "kvBeforeApply", fmt.Sprintf("sleep(%d)", delay.Milliseconds()))
	const writes = 5
	for i := range writes {
		key, value := fmt.Sprintf("slow-%d", i), fmt.Sprintf("slow %d", i)
		start := time.Now()
		r := call(http.MethodPut, f.base+"/v1/kv/"+key, value)
		took := time.Since(start)
		if r.err != nil || r.code != http.StatusOK {
			t.Fatalf("PUT %s through %s while its applies sleep: %s, want 200", key, f.name(), r)
		}
		if took < delay {
			t.Fatalf("PUT %s through %s took %v, less than the %v its apply sleeps", key, f.name(), took, delay)
		}
		for _, m := range c.members {
			mustRead(t, m.base, "/"+key, value)
		}
	}
	if n := failpointCount(t, addr, "kvBeforeApply"); n < writes {
		t.Fatalf("kvBeforeApply slept %d times, fewer than the %d writes applied", n, writes)
	}

	clearFailpoint(t, addr, "kvBeforeApply")
	mustWrite(t, f.base, "/v1/kv/after", "after", http.StatusOK)
	for _, m := range c.members {
		mustRead(t, m.base, "/after", "after")
	}
}

// A panic in an actor the supervision restarts (actors/supervision.go,
// transport/supervise.go, kv/rebuild.go) costs the member nothing but the
// work in hand: injected once at snapBeforeSave (the snapshotter, while it
// writes a .snap), at peerBeforeSend (a peer's actor), at kvBeforeApply
// (the kv actor, in the middle of a batch of entries), at kvBeforeCommit
// (the kv actor, with a batch applied and not committed) or at
// raftBeforeReady (the raft actor, with a Ready to take),
// on the leader or a follower, under writes through every member: the
// process goes on (the same pid), the restart is counted and logged,
// every acknowledged write reads back through every member, the members
// agree on the digest, and a later snapshot is written.
func TestFailpointPanicRestartsTheActor(t *testing.T) {
	for _, tc := range []struct {
		failpoint, actor string
		follower         bool
	}{
		{"snapBeforeSave", "snapshotter", false},
		{"peerBeforeSend", "peer", false},
		{"kvBeforeApply", "kv", false},
		{"kvBeforeApply", "kv", true},
		{"kvBeforeCommit", "kv", true},
		{"raftBeforeReady", "raft", false},
		{"raftBeforeReady", "raft", true},
		{"watchBeforeDispatch", "watch", true},
	} {
		role := "leader"
		if tc.follower {
			role = "follower"
		}
		t.Run(tc.failpoint+" on the "+role, func(t *testing.T) {
			c, endpoints := newGofailCluster(t, 3, failpointNode(t), "--snapshot-count", "50")
			m := c.leader(c.members...)
			if tc.follower {
				m = c.others(m)[0]
			}
			pid := m.p.Pid()
			w := startWriters(t, "fp-"+tc.actor, c.members...)
			w.waitAcked(t, 10, 20*time.Second)
			snapsBefore := snapFiles(t, m)
			set := time.Now()
			setFailpoint(t, endpoints[m.id], tc.failpoint, `1*panic("injected")`)
			testutil.Eventually(t, 20*time.Second, tc.actor+" restarted", func() error {
				if !m.p.Running() {
					t.Fatalf("%s exited:\n%s", m.name(), testutil.Tail(m.p.Output(), 20))
				}
				if n := restarts(t, m, tc.actor); n != 1 {
					return fmt.Errorf("raftkv_actor_restarts_total{actor=%q} is %d", tc.actor, n)
				}
				return nil
			})
			// How long the member went without a write through it, at most:
			// the measure (a second), from before the panic to the
			// next write answered; logged, not asserted (a bound on time
			// belongs to a measurement, not to a test).
			for r := call(http.MethodPut, m.base+"/v1/kv/fp-after", "x"); !r.ok(); r = call(http.MethodPut, m.base+"/v1/kv/fp-after", "x") {
				if !r.retryable() || time.Since(set) > 20*time.Second {
					t.Fatalf("a write through %s after the restart: %s", m.name(), r)
				}
			}
			t.Logf("%s answered a write %v after its %s was set to panic", m.name(), time.Since(set).Round(time.Millisecond), tc.failpoint)
			before := w.count()
			w.waitAcked(t, before+120, 30*time.Second) // past two more snapshots
			w.halt()
			if !m.p.Running() || m.p.Pid() != pid {
				t.Fatalf("%s is not the process it was (pid %d, running %v)", m.name(), pid, m.p.Running())
			}
			if !strings.Contains(m.p.Output(), "an actor panicked; restarted it") {
				t.Fatalf("%s did not log the restart:\n%s", m.name(), testutil.Tail(m.p.Output(), 20))
			}
			if tc.actor == "kv" {
				line := logEntries(m.p.Output(), "rebuilt the state machine after a panic")
				if len(line) != 1 {
					t.Fatalf("%s logged %d rebuilds of its state machine, want 1", m.name(), len(line))
				}
				t.Logf("rebuilt from the db at %v, replayed to %v", line[0]["db_index"], line[0]["replayed_to"])
			}
			checkAll(t, w.snapshot(), c.members...)
			waitEqualDigests(t, c.members...)
			if after := snapFiles(t, m); len(after) == 0 || slices.Equal(after, snapsBefore) {
				t.Fatalf("no new .snap in %s after the restart: %v before, %v after", m.dataDir, snapsBefore, after)
			}
		})
	}
}

// snapFiles lists m's .snap files.
func snapFiles(t *testing.T, m *member) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(m.dataDir, "snap", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// restarts reads raftkv_actor_restarts_total{actor} from m's /metrics.
func restarts(t *testing.T, m *member, actor string) int {
	t.Helper()
	r := call(http.MethodGet, m.base+"/metrics", "")
	if r.err != nil || r.code != http.StatusOK {
		t.Fatalf("GET /metrics of %s: %s", m.name(), r)
	}
	prefix := fmt.Sprintf("raftkv_actor_restarts_total{actor=%q} ", actor)
	for line := range strings.SplitSeq(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %q", prefix, line)
			}
			return n
		}
	}
	return 0
}
