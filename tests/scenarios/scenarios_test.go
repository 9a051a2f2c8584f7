package scenarios

// The scenarios are text files run with github.com/cockroachdb/datadriven,
// the runner of etcd-io/raft's own interaction tests (and already in this
// module's graph through go.etcd.io/raft/v3): a scenario reads as the
// commands and the output they print, a new one is a text file rather
// than Go code, and -rewrite regenerates the expected output after a
// deliberate change, for the diff to show. Writing that runner here would
// duplicate a small, stable library for no gain.

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestScenarios runs each testdata/*.txt on a cluster of its own.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newEnv(t)
		datadriven.RunTest(t, path, e.handle)
	})
}
