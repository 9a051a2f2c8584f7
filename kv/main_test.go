package kv

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests, in both the
// internal and the external (kv_test) tests, which share this binary.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
