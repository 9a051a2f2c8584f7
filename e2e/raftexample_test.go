package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// rxNode is one member of the interop cluster: raftexample's or ours.
type rxNode struct {
	id      uint64
	peerURL string
	base    string
	port    int
	p       *nodeproc.Proc
}

// TestJoinsRaftexampleCluster starts three unmodified etcd raftexample
// processes, adds a node of ours to their cluster the raftexample way
// (POST /4, then --join) and checks that data flows both ways. Then a node of
// ours in native format, whose cluster id differs, tries the same and is
// refused.
func TestJoinsRaftexampleCluster(t *testing.T) {
	rxBin := raftexampleBin(t)
	ports := testutil.FreePorts(t, 10)
	nodes := make([]*rxNode, 5) // 1-3 raftexample, 4 ours, 5 ours in native format
	for i := range nodes {
		nodes[i] = &rxNode{
			id:      uint64(i + 1),
			peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			port:    ports[2*i+1],
			base:    fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
	}
	clusterOf := func(n int) string {
		urls := make([]string, n)
		for i := range n {
			urls[i] = nodes[i].peerURL
		}
		return strings.Join(urls, ",")
	}
	rx, ours, native := nodes[:3], nodes[3], nodes[4]

	for _, n := range rx {
		// raftexample keeps ./raftexample-<id> and ./raftexample-<id>-snap
		// in its working directory.
		n.p = nodeproc.StartT(t, nodeproc.Cmd{Name: fmt.Sprintf("raftexample %d", n.id), Bin: rxBin, Dir: t.TempDir(),
			Args: []string{"--id", strconv.FormatUint(n.id, 10), "--cluster", clusterOf(3), "--port", strconv.Itoa(n.port)}})
	}
	// raftexample answers 204 before the write is committed, and before a
	// leader exists; only reading it back through all three shows that
	// their cluster works.
	rxWriteVisible(t, rx[0], rx, "/seed", "planted before anything else")

	before := map[string]string{}
	for _, n := range rx {
		key := fmt.Sprintf("/before-join-%d", n.id)
		before[key] = "stored by raftexample " + strconv.FormatUint(n.id, 10)
		rxWriteVisible(t, n, rx, key, before[key])
	}
	// raftexample keys are request URIs, escapes and all.
	before["/with%20escape"] = "escaped key"
	rxWriteVisible(t, rx[1], rx, "/with%20escape", before["/with%20escape"])

	if r := call(http.MethodPost, fmt.Sprintf("%s/%d", rx[0].base, ours.id), ours.peerURL); r.code != http.StatusNoContent {
		t.Fatalf("POST /%d to raftexample 1: %s", ours.id, r)
	}
	ours.p = startNode(t, "our node 4", "",
		"--format", "raftexample", "--join", "--id", "4", "--cluster", clusterOf(4),
		"--port", strconv.Itoa(ours.port), "--data-dir", t.TempDir())

	st := waitLeaderAmong(t, ours, rx)
	if st.RaftState != "StateFollower" || len(st.Members) != 4 || st.Members[ours.id] != ours.peerURL {
		t.Errorf("our node's status after joining: %+v, want a follower knowing 4 members", st)
	}
	for key, value := range before {
		mustRead(t, ours.base, key, value)
	}

	// Written through raftexample after the join; its 204 says nothing
	// about the commit, so our node is polled until the value arrives.
	if r := call(http.MethodPut, rx[2].base+"/after-join", "stored by raftexample after the join"); r.code != http.StatusNoContent {
		t.Fatalf("PUT /after-join to raftexample 3: %s", r)
	}
	waitValue(t, ours.base, "/after-join", "stored by raftexample after the join")

	// Written through ours: the 204 comes after the commit, and every
	// raftexample member applies it.
	mustWrite(t, ours.base, "/from-ours", "stored by our node", http.StatusNoContent)
	for _, n := range rx {
		waitValue(t, n.base, "/from-ours", "stored by our node")
	}

	t.Run("native format is refused", func(t *testing.T) {
		if r := call(http.MethodPost, fmt.Sprintf("%s/%d", rx[0].base, native.id), native.peerURL); r.code != http.StatusNoContent {
			t.Fatalf("POST /%d to raftexample 1: %s", native.id, r)
		}
		// Joining, it asks the members for their cluster: raftexample's
		// have no answer, ours (member 4) says it keeps the raftexample
		// format, and the native member refuses to start.
		joiner := startNode(t, "our node 5 (native format, joining)", "",
			"--join", "--id", "5", "--cluster", clusterOf(5),
			"--port", strconv.Itoa(native.port), "--data-dir", t.TempDir())
		joiner.WaitExit(t, 1, 20*time.Second)
		if out := joiner.Output(); !strings.Contains(out, "raftexample format") || !strings.Contains(out, "--format raftexample") {
			t.Fatalf("the native joiner's refusal does not say which format to use:\n%s", testutil.Tail(out, 5))
		}

		// Told a cluster id, it starts, and raftexample's members refuse
		// its messages: the cluster ids differ.
		native.p = startNode(t, "our node 5 (native format)", "",
			"--join", "--id", "5", "--cluster", clusterOf(5), "--cluster-id", "6e6f6465",
			"--port", strconv.Itoa(native.port), "--data-dir", t.TempDir())

		testutil.Eventually(t, 20*time.Second, "raftexample refusing our native node", func() error {
			for _, n := range rx {
				for _, e := range logEntries(n.p.Output(), "request cluster ID mismatch") {
					if e["remote-peer-server-name"] == "5" && e["remote-peer-cluster-id"] != "1000" {
						t.Logf("%s refused our native node: %v", n.p.Name(), e)
						return nil
					}
				}
			}
			if !native.p.Running() {
				t.Fatalf("our native node exited instead of being refused")
			}
			return errors.New("no raftexample member logged a cluster ID mismatch")
		})

		r := call(http.MethodPut, native.base+"/v1/kv/refused", "must not be stored")
		if r.code != http.StatusServiceUnavailable {
			t.Errorf("PUT through the refused native node: %s, want 503 (no leader)", r)
		}
		st, err := getStatus(native.base)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader != 0 || st.Applied != 0 {
			t.Errorf("refused native node: leader %d, applied %d; want no leader and nothing applied", st.Leader, st.Applied)
		}
		// The raftexample cluster and our member 4 still serve.
		mustWrite(t, ours.base, "/after-refusal", "still serving", http.StatusNoContent)
		waitValue(t, rx[0].base, "/after-refusal", "still serving")
	})

	for _, n := range append(rx, ours) {
		if !n.p.Running() {
			t.Errorf("%s exited during the test", n.p.Name())
		}
	}
}

// rxWriteVisible PUTs through w until every member of rx serves the value.
// The PUT is repeated: raftexample drops proposals it cannot make and still
// answers 204, and repeating the same value is harmless.
func rxWriteVisible(t *testing.T, w *rxNode, rx []*rxNode, key, value string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, fmt.Sprintf("raftexample serving %s through all members", key), func() error {
		for _, n := range rx {
			if !n.p.Running() {
				t.Fatalf("%s exited", n.p.Name())
			}
		}
		missing := slices.IndexFunc(rx, func(n *rxNode) bool {
			r := call(http.MethodGet, n.base+key, "")
			return r.code != http.StatusOK || r.body != value
		})
		if missing < 0 {
			return nil
		}
		if r := call(http.MethodPut, w.base+key, value); r.err == nil && r.code != http.StatusNoContent {
			t.Fatalf("PUT %s to %s: %s", key, w.p.Name(), r)
		}
		return fmt.Errorf("raftexample %d does not serve it yet", rx[missing].id)
	})
}

// waitValue polls GET until it answers value; a 404 or a retryable answer
// only means the write has not arrived yet, any other answer fails at once.
func waitValue(t *testing.T, base, key, value string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "GET "+base+key, func() error {
		r := call(http.MethodGet, base+key, "")
		switch {
		case r.err == nil && r.code == http.StatusOK && r.body == value:
			return nil
		case r.retryable() || r.code == http.StatusNotFound:
			return errors.New(r.String())
		default:
			t.Fatalf("GET %s%s: %s, want 200 %q", base, key, r, value)
			return nil
		}
	})
}

// waitLeaderAmong waits until n reports a leader that is one of among.
func waitLeaderAmong(t *testing.T, n *rxNode, among []*rxNode) status {
	t.Helper()
	var st status
	testutil.Eventually(t, 20*time.Second, "our node knowing a raftexample leader", func() error {
		if !n.p.Running() {
			t.Fatalf("%s exited", n.p.Name())
		}
		var err error
		st, err = getStatus(n.base)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(among, func(m *rxNode) bool { return m.id == st.Leader }) {
			return fmt.Errorf("leader %d", st.Leader)
		}
		return nil
	})
	return st
}
