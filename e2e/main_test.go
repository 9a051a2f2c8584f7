package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// raftexample is etcd's contrib/raftexample, built in the background from
// the moment the tests start: its build shares nothing with cmd/node's
// (nodeproc.Node, built by the first test that runs a node), so the two
// overlap, and on a cold build cache raftexample's dependencies take most
// of the time.
var raftexample struct {
	done chan struct{} // closed when the build has ended
	dir  string        // holds the binary
	bin  string        // "" if the build failed
	err  error         // why it failed, with the go command's output
}

func TestMain(m *testing.M) {
	if base := os.Getenv(leaseHolderEnv); base != "" {
		os.Exit(leaseHolder(base)) // a lock holder, not a test run
	}
	raftexample.done = make(chan struct{})
	go buildRaftexample()
	testutil.Main(m,
		func() { <-raftexample.done; _ = os.RemoveAll(raftexample.dir) },
		nodeproc.Cleanup,
		etcdctlCleanup,
		// The shared client's keep-alive connections would count as
		// goroutines left behind.
		httpClient.CloseIdleConnections)
}

func buildRaftexample() {
	defer close(raftexample.done)
	root, err := nodeproc.RepoRoot()
	if err == nil {
		raftexample.dir, err = os.MkdirTemp("", "raftkv-raftexample-")
	}
	if err == nil {
		dst := filepath.Join(raftexample.dir, "raftexample")
		err = nodeproc.GoBuild(filepath.Join(root, "interop", "raftexample"), dst, "go.etcd.io/etcd/v3/contrib/raftexample")
		if err == nil {
			raftexample.bin = dst
		}
	}
	raftexample.err = err
}

// raftexampleBin waits for raftexample's build and returns the binary;
// it skips the test if the build failed for lack of network, the only
// reason the raftexample test may skip, and fails it otherwise.
func raftexampleBin(t *testing.T) string {
	t.Helper()
	<-raftexample.done
	if raftexample.bin == "" {
		if nodeproc.Offline(raftexample.err) {
			t.Skipf("raftexample cannot be built without the Go module proxy: %v", raftexample.err)
		}
		t.Fatalf("build raftexample: %v", raftexample.err)
	}
	return raftexample.bin
}

// startNode runs cmd/node with args in dir ("" for the test's own); it is
// killed and reaped when the test ends (nodeproc.StartT).
func startNode(t *testing.T, name, dir string, args ...string) *nodeproc.Proc {
	t.Helper()
	return nodeproc.StartT(t, nodeproc.Cmd{Name: name, Bin: nodeproc.Node(t), Dir: dir, Args: args})
}

// kill9 kills p with SIGKILL and waits until it is reaped, so that its
// ports are free and its data dir is no longer written.
func kill9(t *testing.T, p *nodeproc.Proc) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
}
