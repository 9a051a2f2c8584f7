package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// Writers keep writing through all three members while the leader is killed
// with SIGKILL: writes go on once the others elect a new leader, no
// acknowledged write is lost, and the killed member restarts from its data
// dir and catches up.
func TestLeaderKilledNoAcknowledgedWriteLost(t *testing.T) {
	c := newCluster(t, 3)
	old := c.leader(c.members...)
	w := startWriters(t, "w", c.members...)
	w.waitAcked(t, 60, 20*time.Second)

	kill9(t, old.p)
	killedAt := w.count()
	survivors := c.others(old)
	c.leader(survivors...)
	// Nothing commits without a leader: apart from at most one answer per
	// writer already in flight at the kill, these acknowledgements come
	// from writes the new leader committed.
	w.waitAcked(t, killedAt+60, 20*time.Second)
	w.halt()
	acked := w.snapshot()
	t.Logf("%d writes acknowledged, %d of them before the kill", len(acked), killedAt)
	checkAll(t, acked, survivors...)

	c.restart(old)
	testutil.Eventually(t, 20*time.Second, old.name()+" replaying its data dir", func() error {
		if len(logEntries(old.p.Output(), "replayed WAL")) > 0 {
			return nil
		}
		return errors.New("no \"replayed WAL\" in its log")
	})
	if created := logEntries(old.p.Output(), "created a new WAL"); len(created) > 0 {
		t.Fatalf("%s restarted with a new, empty WAL: %v", old.name(), created)
	}
	// A linearizable read through the restarted member answers only once
	// it has applied up to the leader's commit index at the time of the
	// read: the data arrived, from its own WAL and from the leader.
	checkAll(t, acked, old)
	c.leader(c.members...)
}
