package faults

import (
	"errors"
	"fmt"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// The faults a failpoint build of cmd/node allows (scripts/build-failpoints.sh):
// the suite runs one when the build can be made, and leaves these faults
// out, saying so, on a machine that cannot fetch gofail.
//
// A panic in an actor the member rebuilds in place (actors/supervision.go)
// must cost only a moment of that member's service: the clients go on, the
// history stays linearizable, the member keeps its process. A crash at a
// durable step (the process killed while it stands at the failpoint, or a
// panic in the wal actor, which stops the member) must lose nothing
// acknowledged: the member restarts from its data dir and catches up.
func failpointFaults() []fault {
	leaderOrAny := func(c *faultCluster) uint64 {
		if l := c.leader(); l != 0 {
			return l
		}
		return c.pick()
	}
	panicOnce := func(name, actor string, pick func(*faultCluster) uint64) fault {
		return fault{"panic the " + actor + " of a member (" + name + ")", func(c *faultCluster) func() {
			id := pick(c)
			m, fp := c.members[id], c.gofail[id]
			pid := m.Pid()
			if err := fp.Set(name, `1*panic("the fault suite's")`); err != nil {
				c.t.Fatal(err)
			}
			return func() {
				// The clients' writes reach it (a snapshot falls due every
				// 300 entries); once it fired, the member must still be the
				// process it was.
				err := testutil.Poll(recoveryBound, testutil.Interval, func() error {
					n, err := fp.Count(name)
					if err == nil && n == 0 {
						err = errors.New("not reached yet")
					}
					return err
				})
				if err != nil {
					c.t.Fatalf("member %d: failpoint %s: %v", id, name, err)
				}
				if err := fp.Clear(name); err != nil {
					c.t.Fatal(err)
				}
				if !m.Running() || m.Pid() != pid {
					c.t.Fatalf("member %d, its %s panicked, is not the process it was (pid %d, now %d, running %v):\n%s",
						id, actor, pid, m.Pid(), m.Running(), testutil.Tail(m.Output(), 30))
				}
			}
		}}
	}
	crashAt := func(name string) fault {
		return fault{"crash at a durable step (" + name + ")", func(c *faultCluster) func() {
			id := c.pick()
			m, fp := c.members[id], c.gofail[id]
			if name == "walBeforeSync" {
				// The wal actor is never rebuilt: the member stops, exit 1.
				if err := fp.Set(name, `panic("the fault suite's")`); err != nil {
					c.t.Fatal(err)
				}
				select {
				case <-m.Exited():
				case <-time.After(recoveryBound):
					c.t.Fatalf("member %d went on after a panic in its wal actor", id)
				}
				if code := m.ExitCode(); code != 1 {
					c.t.Fatalf("member %d exited %d after a panic in its wal actor, want 1", id, code)
				}
			} else {
				// Held at the step until it is killed there: a crash at
				// exactly that point.
				if err := fp.Set(name, "sleep(60000)"); err != nil {
					c.t.Fatal(err)
				}
				err := testutil.Poll(recoveryBound, testutil.Interval, func() error {
					n, err := fp.Count(name)
					if err == nil && n == 0 {
						err = fmt.Errorf("member %d has not reached %s", id, name)
					}
					return err
				})
				if err != nil {
					c.t.Fatal(err)
				}
				if err := m.Kill(); err != nil {
					c.t.Fatal(err)
				}
			}
			return func() { c.start(id, false) } // its failpoints start off
		}}
	}
	return []fault{
		panicOnce("kvBeforeApply", "state machine", (*faultCluster).pick),
		panicOnce("raftBeforeReady", "raft actor", leaderOrAny),
		panicOnce("peerBeforeSend", "peer actor", leaderOrAny),
		panicOnce("snapBeforeSave", "snapshotter", (*faultCluster).pick),
		panicOnce("watchBeforeDispatch", "watch hub", (*faultCluster).pick),
		crashAt("walBeforeSync"),
		crashAt("kvBeforeCommit"),
		crashAt("kvAfterCommitBeforeSnap"),
		crashAt("snapBeforeSave"),
	}
}
