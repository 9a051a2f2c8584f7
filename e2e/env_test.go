package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

// A member configured by RAFTKV_* variables alone, with no argument,
// serves where they say and keeps its data where they say; a flag on the
// command line wins over its variable; a variable that names no flag is
// refused with one line and exit 2, nothing created.
func TestConfiguredFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	ports := testutil.FreePorts(t, 2)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	env := []string{
		fmt.Sprintf("RAFTKV_CLUSTER=http://127.0.0.1:%d", ports[0]),
		"RAFTKV_LISTEN_CLIENT_URLS=" + base,
		"RAFTKV_DATA_DIR=from-env",
		"RAFTKV_INITIAL_CLUSTER_TOKEN=env-test",
		"RAFTKV_LOG_LEVEL=warn",
	}
	p := nodeproc.StartT(t, nodeproc.Cmd{Name: "node", Bin: nodeproc.Node(t), Dir: dir, Env: env})
	p.WaitHealthy(t, nil, base, 20*time.Second)
	mustWrite(t, base, "/v1/kv/k", "v", http.StatusOK)
	mustRead(t, base, "/v1/kv/k", "v")
	if _, err := os.Stat(filepath.Join(dir, "from-env", "db")); err != nil {
		t.Errorf("no db in RAFTKV_DATA_DIR: %v", err)
	}
	// RAFTKV_LOG_LEVEL=warn: the info lines of a start are not written.
	if out := p.Output(); strings.Contains(out, `"level":"info"`) {
		t.Errorf("RAFTKV_LOG_LEVEL=warn, but the member logged at info:\n%s", testutil.Tail(out, 5))
	}
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)

	// The command line wins: the same variables, another data dir given.
	p = nodeproc.StartT(t, nodeproc.Cmd{Name: "node", Bin: nodeproc.Node(t), Dir: dir, Env: env, Args: []string{"--data-dir", "from-flag"}})
	p.WaitHealthy(t, nil, base, 20*time.Second)
	if r := call(http.MethodGet, base+"/v1/kv/k", ""); r.code != http.StatusNotFound {
		t.Errorf("GET k from a member on a new data dir: %s, want 404", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-flag", "db")); err != nil {
		t.Errorf("no db in --data-dir: %v", err)
	}
	p.SignalAndWait(t, syscall.SIGTERM, 0, 20*time.Second)

	// A misspelt variable is refused as a misspelt flag is.
	empty := t.TempDir()
	var stderr testutil.Buffer
	p = nodeproc.StartT(t, nodeproc.Cmd{Name: "node", Bin: nodeproc.Node(t), Dir: empty, Stderr: &stderr,
		Env: append(env, "RAFTKV_DATADIR=typo")})
	p.WaitExit(t, 2, 20*time.Second)
	if line := stderr.String(); strings.Count(line, "\n") != 1 || !strings.Contains(line, "RAFTKV_DATADIR names no flag") {
		t.Errorf("stderr %q, want one line naming RAFTKV_DATADIR", line)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("a refused start left %v", entries)
	}
}
