package metrics

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

// TestMain fails the run if any goroutine outlives the tests.
func TestMain(m *testing.M) { testutil.Main(m) }
