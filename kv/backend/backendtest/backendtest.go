// Package backendtest gives tests a backend in a temporary directory, as
// etcd's betesting does. Only tests import it.
package backendtest

import (
	"path/filepath"
	"testing"

	"github.com/raftkv/node/kv/backend"
)

// NewTmpBackend opens a new db in a temporary directory of t; it is closed
// when the test ends (a test that closes it first is fine: Close twice
// only fails the second time, which the cleanup ignores).
func NewTmpBackend(t testing.TB) *backend.Backend {
	t.Helper()
	be, _, err := backend.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("open a temporary backend: %v", err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}
