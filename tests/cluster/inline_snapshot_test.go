package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/raftkv/node/actors"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/kv/apply"
)

// In raftexample's format a snapshot carries the state inline, and the
// leader keeps only its metadata in memory: to send it to a follower that
// fell behind the compaction, the raft actor's storage asks the snapshotter
// to read the .snap file back (messages.LoadSnapshot) and gets the data in
// the raft actor's mailbox (messages.SnapshotLoaded). Without that answer
// raft never sends the snapshot and the follower never catches up.
func TestFollowerCatchesUpByInlineSnapshotReadBack(t *testing.T) {
	forEachNetwork(t, func(t *testing.T, over network) {
		c := newClusterOver(t, over, 3, func(cfg *actors.NodeConfig) {
			cfg.Format = apply.FormatRaftexample
			cfg.SnapshotCount = 10
			cfg.CatchUpEntries = 2
		})
		f := c.follower()
		c.stop(f)
		lead := c.leader()
		for i := range 40 {
			c.put(lead, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i))
		}
		testutil.Eventually(t, waitFor, "leader compacts its log", func() error {
			snaps, _ := filepath.Glob(filepath.Join(c.Member(lead).DataDir, "snap", "*.snap"))
			if len(snaps) == 0 {
				return errors.New("no snapshot yet")
			}
			return nil
		})
		before := c.SnapshotsSent()
		c.start(f, false)
		for i := range 40 {
			c.expect(f, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i), true)
		}
		if c.SnapshotsSent() == before {
			t.Fatal("the follower caught up without a snapshot: the test did not exercise what it claims")
		}
		c.converged()
	})
}
