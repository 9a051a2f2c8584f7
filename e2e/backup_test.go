package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/nodeproc"
)

// runNode runs `node args...` to completion and returns its exit status,
// stdout and stderr.
func runNode(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(nodeproc.Node(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// `node snapshot save` takes a backup from a member over the client API
// (the first endpoint that serves one), `node snapshot status` reads the
// same from the file, and a file cut short or changed is refused.
func TestSnapshotSaveAndStatus(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	for i := range 50 {
		mustWrite(t, lead.base, fmt.Sprintf("/v1/kv/backup/%02d", i), "value", http.StatusOK)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	// The first endpoint is down: the next one, the member that
	// acknowledged the writes, serves; its backup holds every one of them.
	endpoints := "http://127.0.0.1:1," + lead.base
	code, out, errOut := runNode(t, "snapshot", "save", "--endpoints", endpoints, file)
	if code != 0 || !strings.Contains(out, "50 keys") {
		t.Fatalf("snapshot save: exit %d, %q, %q", code, out, errOut)
	}
	code, status, errOut := runNode(t, "snapshot", "status", file)
	if code != 0 || status != out {
		t.Fatalf("snapshot status: exit %d, %q, %q; want %q", code, status, errOut, out)
	}

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"cut short", b[:len(b)/2]},
		{"a byte changed", func() []byte { x := bytes.Clone(b); x[len(x)/2] ^= 0x40; return x }()},
	} {
		bad := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(bad, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runNode(t, "snapshot", "status", bad)
		if code != 1 || out != "" || !strings.Contains(errOut, "backup corrupt") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("status of a backup %s: exit %d, %q, %q; want 1 and one line saying it is corrupt", tc.name, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"snapshot"}, {"snapshot", "save"}, {"snapshot", "frobnicate"}, {"snapshot", "save", "--bogus", file}} {
		if code, _, _ := runNode(t, args...); code != 2 {
			t.Errorf("node %q: exit %d, want 2", args, code)
		}
	}
}
