package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	ports := freePorts(t, 6)
	peer := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]) }
	client := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]) }

	// go run ./cmd/node
	solo := startProc(t, "node (defaults)", work, nodeBin, "--port", strconv.Itoa(ports[1]), "--cluster", peer(0))
	waitHealthy(t, client(0))
	mustWrite(t, client(0), "/foo", "solo", http.StatusNoContent)
	stop(t, solo)

	cluster := strings.Join([]string{peer(0), peer(1), peer(2)}, ",")
	var procs [3]*proc
	for i := range 3 {
		procs[i] = startProc(t, fmt.Sprintf("node %d", i+1), work, nodeBin,
			"--id", strconv.Itoa(i+1), "--cluster", cluster, "--port", strconv.Itoa(ports[2*i+1]))
	}
	procs[0].waitExit(t, 1, 20*time.Second)
	out := strings.TrimSpace(procs[0].out.String())
	last := out[strings.LastIndex(out, "\n")+1:]
	for _, want := range []string{"node: data dir node-1 holds member 1 of another cluster", "--cluster " + peer(0), "move the data dir away"} {
		if !strings.Contains(last, want) {
			t.Errorf("member 1's refusal %q does not say %q", last, want)
		}
	}

	for i := 1; i < 3; i++ {
		waitHealthy(t, client(i))
	}
	mustWrite(t, client(1), "/foo", "bar", http.StatusNoContent)
	mustRead(t, client(2), "/foo", "bar")
	for i := 1; i < 3; i++ {
		if !procs[i].running() {
			t.Fatalf("member %d exited:\n%s", i+1, logTail(procs[i].out.String(), 30))
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
	ports := freePorts(t, 6)
	peer := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]) }
	client := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]) }
	const id = "5ad"

	solo := startProc(t, "node (defaults)", work, nodeBin, "--port", strconv.Itoa(ports[1]), "--cluster", peer(0), "--cluster-id", id)
	waitHealthy(t, client(0))
	for i := range 20 {
		mustWrite(t, client(0), fmt.Sprintf("/solo-%d", i), "solo", http.StatusNoContent)
	}
	stop(t, solo)

	cluster := strings.Join([]string{peer(0), peer(1), peer(2)}, ",")
	var procs [3]*proc
	for i := range 3 {
		procs[i] = startProc(t, fmt.Sprintf("node %d", i+1), work, nodeBin,
			"--id", strconv.Itoa(i+1), "--cluster", cluster, "--port", strconv.Itoa(ports[2*i+1]), "--cluster-id", id)
	}
	// Write through every member for a while: the members exchange votes,
	// appends and heartbeats across the two logs.
	deadline := time.Now().Add(8 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		call(http.MethodPut, fmt.Sprintf("%s/k-%d", client(n%3), n), "v")
		for i, p := range procs {
			if !p.running() {
				t.Fatalf("member %d exited:\n%s", i+1, logTail(p.out.String(), 40))
			}
		}
	}
	refused := 0
	for _, p := range procs {
		refused += len(logEntries(p.out.String(), "turned away a message from a peer"))
	}
	t.Logf("messages turned away: %d", refused)
}

// waitHealthy waits until base answers /healthz with 200.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	poll(t, 20*time.Second, base+" healthy", func() (bool, string) {
		r := call(http.MethodGet, base+"/healthz", "")
		return r.code == http.StatusOK, r.String()
	})
}

// stop sends SIGTERM and wants a clean exit.
func stop(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 0, 20*time.Second)
}
