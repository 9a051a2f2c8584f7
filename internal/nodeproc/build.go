package nodeproc

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
)

// module is the root module's path, as its go.mod names it.
const module = "github.com/raftkv/node"

// RepoRoot is the root module's directory, found from the test's working
// directory upwards, so that the tests run from any checkout path and
// from any package's directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module " + module + " above the working directory")
		}
		dir = parent
	}
}

// GoBuild runs `go build -o out pkg` in dir.
func GoBuild(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// build is a binary built once per test binary, on first use, into a
// temporary directory that Cleanup removes.
type build struct {
	once sync.Once
	dir  string // the temporary directory that holds it
	bin  string
	err  error
}

// get builds the binary on the first call, with compile writing it to out
// from the repository's root, and returns it or why it could not be built.
func (b *build) get(compile func(root, out string) error) (string, error) {
	b.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			b.err = err
			return
		}
		if b.dir, err = os.MkdirTemp("", "raftkv-node-"); err != nil {
			b.err = err
			return
		}
		b.bin = filepath.Join(b.dir, "node")
		b.err = compile(root, b.bin)
	})
	if b.err != nil {
		return "", b.err
	}
	return b.bin, nil
}

func (b *build) cleanup() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// built is cmd/node; failpointsBuilt is cmd/node with its failpoints.
var built, failpointsBuilt build

// Node is cmd/node, built on the first call into a temporary directory
// and shared by every test of the binary; it fails t if the build fails.
// A package that calls it passes Cleanup to testutil.Main.
func Node(t testing.TB) string {
	t.Helper()
	bin, err := built.get(func(root, out string) error { return GoBuild(root, out, "./cmd/node") })
	if err != nil {
		t.Fatalf("build cmd/node: %v", err)
	}
	return bin
}

// FailpointNode is cmd/node with its gofail failpoints compiled in, built
// by scripts/build-failpoints.sh on the first call into a temporary
// directory and shared by every test of the binary. The build may need the
// Go module proxy (for gofail, on a machine that has never fetched it), so
// it returns the error, with the script's output, rather than failing the
// test: the caller tells a machine offline from a broken build. A package
// that calls it passes Cleanup to testutil.Main.
func FailpointNode() (string, error) {
	return failpointsBuilt.get(func(root, out string) error {
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "build-failpoints.sh"), out)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("scripts/build-failpoints.sh: %w\n%s", err, b)
		}
		return nil
	})
}

// Cleanup removes what Node and FailpointNode built. It runs after the
// package's tests, from testutil.Main.
func Cleanup() {
	built.cleanup()
	failpointsBuilt.cleanup()
}

// Offline reports whether err, from a build, says the Go module proxy could
// not be reached: a test may then skip what needs a module this machine
// never fetched (raftexample's, gofail), and must fail on anything else.
func Offline(err error) bool {
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
