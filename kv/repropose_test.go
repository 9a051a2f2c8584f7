package kv

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// wantRepropose checks that the kv actor proposed p again, byte for byte.
func (f *fixture) wantRepropose(t *testing.T, p messages.Propose, what string) {
	t.Helper()
	q := recv[messages.Propose](t, f.raft.got, what)
	if q.ID != p.ID || !bytes.Equal(q.Data, p.Data) {
		t.Fatalf("%s: proposed %d (%d bytes), want %d again, the same bytes (%d)", what, q.ID, len(q.Data), p.ID, len(p.Data))
	}
}

func (f *fixture) leaderChanged(leader, term uint64) {
	f.system.Root.Send(f.pid, messages.LeaderChanged{Leader: leader, Term: term})
}

// A write in flight when a new leader is named is proposed again, once per
// leadership; raft refusing one copy answers nothing; the copy applied
// first answers the client, and the other is skipped.
func TestActorReproposesOnLeaderChange(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.leaderChanged(3, 1)
	w := f.request(messages.Put{Key: "k", Value: []byte("1")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")

	f.leaderChanged(2, 2)
	f.wantRepropose(t, p, "the write proposed again under leader 2")
	f.leaderChanged(2, 2) // told twice: nothing more
	f.raftQuiet(t)

	// raft refuses a copy (the first, say, which waited for a leader too
	// long): the other may still be in the log.
	f.system.Root.Send(f.pid, messages.ProposalFailed{ID: p.ID, Err: messages.ErrNoLeader})
	w.pending(t)

	// This member is elected in a later term: proposed again.
	f.leaderChanged(1, 3)
	f.wantRepropose(t, p, "the write proposed again with this member as leader")

	f.wantDelivery(t, f.apply(normalEntry(1, p.Data), normalEntry(2, p.Data)))
	if r := w.result(t); r.Err != nil || r.Index != 1 || r.Revision != 1 {
		t.Fatalf("answer %+v, want success at index 1, revision 1", r)
	}
	f.wantDelivery(t, f.apply(normalEntry(3, p.Data)))
	w.pending(t) // answered once
	if r := f.keyRecord(t, "k"); r.ModRevision != 1 || r.Version != 1 {
		t.Fatalf("k = %+v, want written once, at revision 1", r)
	}
	var inflight int
	f.inspect(t, func(a *Actor) { inflight = len(a.inflight) })
	if inflight != 0 {
		t.Fatalf("%d proposals in flight after the apply", inflight)
	}

	// Applied, nothing is proposed again; a write made under the current
	// leadership is not proposed again under it, only under the next.
	f.leaderChanged(3, 4)
	f.raftQuiet(t)
	w2 := f.request(messages.Put{Key: "k", Value: []byte("2")})
	p2 := recv[messages.Propose](t, f.raft.got, "Propose under leader 3")
	f.leaderChanged(3, 4)
	f.raftQuiet(t)
	f.leaderChanged(2, 5)
	f.wantRepropose(t, p2, "the second write proposed again under leader 2")
	f.wantDelivery(t, f.apply(normalEntry(4, p2.Data)))
	if r := w2.result(t); r.Err != nil || r.Revision != 4 {
		t.Fatalf("second answer %+v, want success at revision 4", r)
	}
}

// A batch is proposed again whole; if only the copy is applied (the first
// was lost with the old leader), every write of it is answered by it, and a
// first copy that comes after all changes nothing.
func TestActorReproposesBatch(t *testing.T) {
	g := &actortest.Gate{}
	f := newFixture(t, fixtureOpts{props: []actor.PropsOption{actor.WithDispatcher(g)}})
	f.leaderChanged(3, 1)
	f.sync(t)
	g.Close()
	var calls []*call
	for i := range 4 {
		calls = append(calls, f.request(messages.Put{Key: fmt.Sprint("k", i), Value: []byte("v")}))
	}
	// A transaction that writes goes in an entry of its own (kv/actor.go):
	// the fifth write of the batch is a put.
	calls = append(calls, f.request(messages.Put{Key: "t", Value: []byte("yes")}))
	g.Open()
	p := recv[messages.Propose](t, f.raft.got, "the batch")
	if got := describeProposal(t, p); len(got) != 5 {
		t.Fatalf("proposal holds %q, want the five writes", got)
	}
	f.leaderChanged(2, 2)
	f.wantRepropose(t, p, "the batch proposed again")

	f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
	for i, w := range calls {
		if r := w.result(t); r.Err != nil || r.Revision != 1 {
			t.Fatalf("write %d answered %+v, want success at revision 1", i, r)
		}
	}
	before := f.digest(t)
	f.wantDelivery(t, f.apply(normalEntry(2, p.Data)))
	if after := f.digest(t); after.Sum != before.Sum {
		t.Fatalf("the batch's copy changed the state: digest %s, was %s", after.Sum, before.Sum)
	}
	if r := f.keyRecord(t, "t"); string(r.Value) != "yes" || r.Version != 1 {
		t.Fatalf("t = %+v, want yes, written once", r)
	}
	if rev := f.revision(t); rev != 1 {
		t.Fatalf("revision %d after the copy, want 1", rev)
	}
	for _, w := range calls {
		w.pending(t)
	}
}

// Only what can still be answered is proposed again: not a proposal past
// its deadline, not one raft refused before any copy was made (its clients
// were told), and nothing in raftexample's format, whose members would
// apply a copy.
func TestActorReproposesOnlyWhatWaits(t *testing.T) {
	t.Run("past its deadline", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		f.leaderChanged(3, 1)
		f.request(messages.Put{Key: "k", Value: []byte("1")})
		p := recv[messages.Propose](t, f.raft.got, "Propose")
		f.inspect(t, func(a *Actor) { a.inflight[p.ID].deadline = time.Now().Add(-time.Second) })
		f.leaderChanged(2, 2)
		f.raftQuiet(t)
	})
	t.Run("refused", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		f.leaderChanged(3, 1)
		w := f.request(messages.Put{Key: "k", Value: []byte("1")})
		p := recv[messages.Propose](t, f.raft.got, "Propose")
		f.system.Root.Send(f.pid, messages.ProposalFailed{ID: p.ID, Err: messages.ErrNoLeader})
		w.wantErr(t, messages.ErrNoLeader)
		f.leaderChanged(2, 2)
		f.raftQuiet(t)
	})
	t.Run("raftexample", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.Format = apply.FormatRaftexample }})
		f.leaderChanged(3, 1)
		f.request(messages.Put{Key: "k", Value: []byte("1")})
		recv[messages.Propose](t, f.raft.got, "Propose")
		f.leaderChanged(2, 2)
		f.raftQuiet(t)
	})
}

// A proposal made before any leader was named (at start) went to the first
// leader named, held by the raft actor until then, or placed with it: it is
// proposed again only under the next.
func TestActorProposalBeforeAnyLeader(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.request(messages.Put{Key: "k", Value: []byte("1")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	f.leaderChanged(2, 2)
	f.raftQuiet(t)
	f.leaderChanged(3, 3)
	f.wantRepropose(t, p, "the write proposed again under the second leader named")
	f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
	if r := w.result(t); r.Err != nil || r.Revision != 1 {
		t.Fatalf("answer %+v, want success at revision 1", r)
	}
}
