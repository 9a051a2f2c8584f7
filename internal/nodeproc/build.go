package nodeproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// built is cmd/node, built once per test binary.
var built struct {
	once sync.Once
	dir  string // the temporary directory that holds it
	bin  string
	err  error
}

// Node is cmd/node, built on the first call into a temporary directory
// and shared by every test of the binary; it fails t if the build fails.
// A package that calls it passes Cleanup to testutil.Main.
func Node(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "raftkv-node-"); err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(built.dir, "node")
		built.err = GoBuild(root, built.bin, "./cmd/node")
	})
	if built.err != nil {
		t.Fatalf("build cmd/node: %v", built.err)
	}
	return built.bin
}

// Cleanup removes what Node built. It runs after the package's tests,
// from testutil.Main.
func Cleanup() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
