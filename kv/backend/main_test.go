package backend

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

// TestMain fails the run if any goroutine outlives the tests, such as the
// writer of a Stream whose reader was not closed.
func TestMain(m *testing.M) { testutil.Main(m) }
