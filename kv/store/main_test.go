package store

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

// TestMain fails the run if any goroutine outlives the tests: a stream's
// writer (backend.Stream), a reader of ReadEvents.
func TestMain(m *testing.M) { testutil.Main(m) }
