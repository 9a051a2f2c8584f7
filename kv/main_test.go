package kv

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

// TestMain fails the run if any goroutine outlives the tests, in both the
// internal and the external (kv_test) tests, which share this binary.
func TestMain(m *testing.M) { testutil.Main(m) }

// peerURLs maps a member list to its peer URLs, for comparisons.
func peerURLs(ms []messages.Member) map[uint64]string {
	out := make(map[uint64]string, len(ms))
	for _, m := range ms {
		out[m.ID] = m.PeerURL
	}
	return out
}
