package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// The binaries under test, built once by TestMain.
var (
	nodeBin string // cmd/node

	raftexampleBin string // etcd's contrib/raftexample; "" if its build failed
	raftexampleErr error  // why it failed, with the go command's output
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests is TestMain without os.Exit, so that the deferred removal of the
// binaries runs.
func runTests(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin, err := os.MkdirTemp("", "raftkv-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(bin)

	// The two builds share nothing, so they overlap: on a cold build cache
	// raftexample's dependencies take most of the time.
	var wg sync.WaitGroup
	var nodeErr error
	wg.Go(func() {
		nodeErr = goBuild(root, filepath.Join(bin, "node"), "./cmd/node")
	})
	wg.Go(func() {
		dst := filepath.Join(bin, "raftexample")
		raftexampleErr = goBuild(filepath.Join(root, "interop", "raftexample"), dst,
			"go.etcd.io/etcd/v3/contrib/raftexample")
		if raftexampleErr == nil {
			raftexampleBin = dst
		}
	})
	wg.Wait()
	if nodeErr != nil {
		fmt.Fprintln(os.Stderr, "e2e:", nodeErr)
		return 1
	}
	nodeBin = filepath.Join(bin, "node")

	code := m.Run()
	httpClient.CloseIdleConnections()
	if code == 0 {
		// What goleak.VerifyTestMain does, minus its os.Exit, which would
		// skip the removal of the binaries.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines left behind:", err)
			code = 1
		}
	}
	return code
}

// repoRoot finds the root module's directory from the test's working
// directory (e2e/) upwards, so the tests also run from another checkout path.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/raftkv/node\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module github.com/raftkv/node above the working directory")
		}
		dir = parent
	}
}

func goBuild(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// offline reports whether a failed build failed for lack of network: the
// only reason the raftexample test may skip.
func offline(err error) bool {
	s := err.Error()
	for _, sign := range []string{
		"dial tcp", "no such host", "network is unreachable", "connection refused",
		"i/o timeout", "TLS handshake timeout", "proxyconnect", "GOPROXY=off",
		"module lookup disabled",
	} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}
