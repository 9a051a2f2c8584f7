package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// The README's commands in order, as a newcomer runs them from one folder:
// first the one-member cluster on the defaults (./node-1), then the three
// members of "A three-member cluster". Member 1 finds ./node-1 made by the
// other cluster and refuses to start, saying so in one line; members 2 and
// 3 form a quorum and serve; nothing acknowledges a write the three-member
// cluster does not hold. Ports are free ones instead of the README's, which
// this machine may be using.
func TestREADMESequence(t *testing.T) {
	work := t.TempDir()
	ports := testutil.FreePorts(t, 6)
	peer := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]) }
	client := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]) }

	// go run ./cmd/node
	solo := startNode(t, "node (defaults)", work, "--port", strconv.Itoa(ports[1]), "--cluster", peer(0))
	solo.WaitHealthy(t, nil, client(0), 20*time.Second)
	mustWrite(t, client(0), "/foo", "solo", http.StatusNoContent)
	solo.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)

	cluster := strings.Join([]string{peer(0), peer(1), peer(2)}, ",")
	var procs [3]*nodeproc.Proc
	for i := range 3 {
		procs[i] = startNode(t, fmt.Sprintf("node %d", i+1), work,
			"--id", strconv.Itoa(i+1), "--cluster", cluster, "--port", strconv.Itoa(ports[2*i+1]))
	}
	procs[0].WaitExit(t, 1, 20*time.Second)
	out := strings.TrimSpace(procs[0].Output())
	last := out[strings.LastIndex(out, "\n")+1:]
	for _, want := range []string{"node: data dir node-1 holds member 1 of another cluster", "--cluster " + peer(0), "move the data dir away"} {
		if !strings.Contains(last, want) {
			t.Errorf("member 1's refusal %q does not say %q", last, want)
		}
	}

	for i := 1; i < 3; i++ {
		procs[i].WaitHealthy(t, nil, client(i), 20*time.Second)
	}
	mustWrite(t, client(1), "/foo", "bar", http.StatusNoContent)
	mustRead(t, client(2), "/foo", "bar")
	for i := 1; i < 3; i++ {
		if !procs[i].Running() {
			t.Fatalf("member %d exited:\n%s", i+1, testutil.Tail(procs[i].Output(), 30))
		}
	}
}

// The same sequence with one cluster id forced on all four starts
// (--cluster-id), so that member 1 does start on the one-member cluster's
// data dir and talks to members 2 and 3, which hold another log under the
// same id. Whatever its messages hold, no member may crash: raft would
// panic on some of them (a log index past the leader's own, a commit
// index past the follower's log), and the raft actor turns those away.
func TestForeignLogUnderOneClusterIDCrashesNoMember(t *testing.T) {
	work := t.TempDir()
	ports := testutil.FreePorts(t, 6)
	peer := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]) }
	client := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]) }
	const id = "5ad"

	solo := startNode(t, "node (defaults)", work, "--port", strconv.Itoa(ports[1]), "--cluster", peer(0), "--cluster-id", id)
	solo.WaitHealthy(t, nil, client(0), 20*time.Second)
	for i := range 20 {
		mustWrite(t, client(0), fmt.Sprintf("/solo-%d", i), "solo", http.StatusNoContent)
	}
	solo.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)

	cluster := strings.Join([]string{peer(0), peer(1), peer(2)}, ",")
	var procs [3]*nodeproc.Proc
	for i := range 3 {
		procs[i] = startNode(t, fmt.Sprintf("node %d", i+1), work,
			"--id", strconv.Itoa(i+1), "--cluster", cluster, "--port", strconv.Itoa(ports[2*i+1]), "--cluster-id", id)
	}
	// Write through every member for a while: the members exchange votes,
	// appends and heartbeats across the two logs.
	deadline := time.Now().Add(8 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		call(http.MethodPut, fmt.Sprintf("%s/k-%d", client(n%3), n), "v")
		for i, p := range procs {
			if !p.Running() {
				t.Fatalf("member %d exited:\n%s", i+1, testutil.Tail(p.Output(), 40))
			}
		}
	}
	refused := 0
	for _, p := range procs {
		refused += len(logEntries(p.Output(), "turned away a message from a peer"))
	}
	t.Logf("messages turned away: %d", refused)
}
