package testutil

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// isolateEnv names the test a child process of Isolate runs.
const isolateEnv = "TESTUTIL_ISOLATED"

// Isolate runs the calling test again in a child process of the test
// binary, and fails it if the child fails or dies, for a test that may kill
// its process (a fault in an mmap of a file cut short). It returns true in
// the child, which goes on with the test, and false in the parent, which
// has nothing more to do.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolateEnv) == t.Name() {
		return true
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.count=1", "-test.v")
	// The race detector sleeps a second at exit, to let reports be
	// written; a child's report is in its output before it exits.
	cmd.Env = append(os.Environ(), isolateEnv+"="+t.Name(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\ngoroutine ")
		t.Fatalf("in a process of its own: %v\n%s", err, first)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("in a process of its own, the test did not pass:\n%s", out)
	}
	return false
}
