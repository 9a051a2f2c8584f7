package watch_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a stream
// must leave nothing behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
