package actors

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// wantLeaderChanged waits for the kv actor to be told of a leader.
func (rig *raftRig) wantLeaderChanged(t *testing.T, want messages.LeaderChanged) {
	t.Helper()
	select {
	case got := <-rig.leaders:
		if got != want {
			t.Fatalf("kv actor told %+v, want %+v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("kv actor not told of leader %d in term %d", want.Leader, want.Term)
	}
}

// noLeaderChanged fails if the kv actor was told of a leader by now.
func (rig *raftRig) noLeaderChanged(t *testing.T) {
	t.Helper()
	rig.status(t) // everything sent before has been handled
	select {
	case got := <-rig.leaders:
		t.Fatalf("kv actor told %+v, want nothing", got)
	default:
	}
}

// The kv actor hears of every new leader, this member included, with its
// term, and of no leader twice: it proposes again what it had in flight
// under another (kv/repropose.go).
func TestRaftTellsKVOfNewLeaders(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2, 3)
	rig.elect(t)
	rig.wantLeaderChanged(t, messages.LeaderChanged{Leader: 1, Term: rig.status(t).Term})
	rig.noLeaderChanged(t)

	heartbeat := func(from, term uint64) {
		rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(from), To: new(uint64(1)), Term: new(term)})
	}
	heartbeat(2, 5)
	rig.wantLeaderChanged(t, messages.LeaderChanged{Leader: 2, Term: 5})
	heartbeat(2, 5)
	rig.noLeaderChanged(t)
	heartbeat(3, 6)
	rig.wantLeaderChanged(t, messages.LeaderChanged{Leader: 3, Term: 6})
	rig.noLeaderChanged(t)
}
