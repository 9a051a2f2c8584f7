package watch_test

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

// TestMain fails the run if any goroutine outlives the tests: a stream
// must leave nothing behind.
func TestMain(m *testing.M) { testutil.Main(m) }
