package actors

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// slowClock keeps the raft actor from ticking during a test: every election
// and every timeout below comes from the messages the test sends. A held
// proposal would wait ten seconds.
func slowClock(c *RaftConfig) { c.TickInterval = time.Second }

// sentTo waits until the raft actor has sent a message to peer `to` that
// matches, and returns it.
func (rig *raftRig) sentTo(t *testing.T, to uint64, what string, match func(*raftpb.Message) bool) *raftpb.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range rig.net.messages() {
			if m.GetTo() == to && match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s to %d; sent: %v", what, to, rig.net.messages())
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

func ofType(typ raftpb.MessageType) func(*raftpb.Message) bool {
	return func(m *raftpb.Message) bool { return m.GetType() == typ }
}

// carries says whether a MsgApp or MsgProp holds an entry with data.
func carries(data []byte) func(*raftpb.Message) bool {
	return func(m *raftpb.Message) bool {
		for _, e := range m.GetEntries() {
			if bytes.Equal(e.GetData(), data) {
				return true
			}
		}
		return false
	}
}

// elect makes member 1 leader with member 2's vote, played by the test: 2
// orders an election (MsgTimeoutNow, as for a transfer) and grants it.
func (rig *raftRig) elect(t *testing.T) {
	t.Helper()
	// raft refuses to campaign while its bootstrap conf changes are
	// unapplied.
	deadline := time.Now().Add(10 * time.Second)
	for st := rig.status(t); st.Applied < st.Commit || st.Commit == 0; st = rig.status(t) {
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap entries not applied: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgTimeoutNow.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(1))})
	vote := rig.sentTo(t, 2, "MsgVote", ofType(raftpb.MsgVote))
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgVoteResp.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(vote.GetTerm())})
	deadline = time.Now().Add(10 * time.Second)
	for rig.status(t).RaftState != "StateLeader" {
		if time.Now().After(deadline) {
			t.Fatal("member 1 did not become leader")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

// A proposal made while no leader is known is held, not dropped, and goes
// to the leader once there is one.
func TestRaftHoldsProposalsUntilALeader(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2)
	rig.system.Root.Send(rig.raft, messages.Propose{ID: 7, Data: []byte("held")})
	rig.status(t) // the proposal has been handled
	if len(rig.kvOther) != 0 {
		t.Fatalf("a proposal without a leader was answered at once: %v", <-rig.kvOther)
	}
	rig.elect(t)
	// In the leader's log: it goes to member 2 once 2 answers the probe.
	rig.appended(t, "the held proposal", carries([]byte("held")))
}

// appended waits for a MsgStorageAppend that matches.
func (rig *raftRig) appended(t *testing.T, what string, match func(*raftpb.Message) bool) {
	t.Helper()
	for {
		if m := next(t, rig.wal, what); m.GetType() == raftpb.MsgStorageAppend && match(m) {
			return
		}
	}
}

// confChangeOutcome waits until the proposed conf change cc is either
// failed back to the kv actor (its error) or appended to the log (nil).
func (rig *raftRig) confChangeOutcome(t *testing.T, cc *raftpb.ConfChange) error {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-rig.kvOther:
			if pf, ok := m.(messages.ProposalFailed); ok {
				return pf.Err
			}
		case m := <-rig.wal:
			for _, e := range m.GetEntries() {
				var got raftpb.ConfChange
				if e.GetType() == raftpb.EntryConfChange && proto.Unmarshal(e.GetData(), &got) == nil &&
					got.GetType() == cc.GetType() && got.GetNodeId() == cc.GetNodeId() {
					return nil
				}
			}
		case <-timeout:
			t.Fatal("the conf change was neither refused nor appended")
			return nil
		}
	}
}

// A held proposal that no leader takes within an election timeout fails
// with ErrNoLeader: nothing was proposed, and the client may retry.
func TestRaftFailsHeldProposalsAfterAnElectionTimeout(t *testing.T) {
	rig := newRaftRig(t, 1, 2) // member 2 never answers: no leader ever
	rig.system.Root.Send(rig.raft, messages.Propose{ID: 7, Data: []byte("x")})
	select {
	case m := <-rig.kvOther:
		pf, ok := m.(messages.ProposalFailed)
		if !ok || pf.ID != 7 || !errors.Is(pf.Err, messages.ErrNoLeader) {
			t.Fatalf("kv actor got %#v, want ProposalFailed 7 ErrNoLeader", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held proposal was never failed")
	}
}

// A leader asked to hand over picks the voter that is up, sends it
// TimeoutNow once it has the whole log, holds the proposals it gets
// meanwhile, and answers once the new leader is known; the proposals then
// go to the new leader.
func TestRaftTransfersLeadership(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2)
	rig.elect(t)
	app := rig.sentTo(t, 2, "MsgApp", ofType(raftpb.MsgApp))
	last := app.GetIndex() + uint64(len(app.GetEntries()))
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: new(uint64(2)), To: new(uint64(1)),
		Term: new(app.GetTerm()), Index: new(last)})

	transferred := make(chan any, 1)
	rig.system.Root.RequestFuture(rig.raft, messages.TransferLeadership{}, 10*time.Second).PipeTo(
		rig.system.Root.Spawn(actorFunc(func(m any) { transferred <- m })))
	timeoutNow := rig.sentTo(t, 2, "MsgTimeoutNow", ofType(raftpb.MsgTimeoutNow))
	rig.system.Root.Send(rig.raft, messages.Propose{ID: 8, Data: []byte("during")})
	rig.status(t)
	if len(rig.kvOther) != 0 {
		t.Fatalf("a proposal during the transfer was answered: %v", <-rig.kvOther)
	}
	// Member 2 wins its election and tells member 1 with a heartbeat.
	term := timeoutNow.GetTerm() + 1
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(term)})
	select {
	case m := <-transferred:
		if lt, ok := m.(messages.LeadershipTransferred); !ok || lt.Err != nil || lt.Leader != 2 {
			t.Fatalf("TransferLeadership answered %#v, want leader 2", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TransferLeadership never answered")
	}
	rig.sentTo(t, 2, "the held proposal, forwarded", func(m *raftpb.Message) bool {
		return m.GetType() == raftpb.MsgProp && carries([]byte("during"))(m)
	})
}

// What TransferLeadership refuses, before raft is asked anything.
func TestRaftTransferRefusals(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2)
	ask := func(to uint64) messages.LeadershipTransferred {
		res, err := rig.system.Root.RequestFuture(rig.raft, messages.TransferLeadership{To: to}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(messages.LeadershipTransferred)
	}
	if lt := ask(0); !errors.Is(lt.Err, messages.ErrNotLeader) {
		t.Fatalf("a follower asked to hand over: %v, want ErrNotLeader", lt.Err)
	}
	if lt := ask(2); !errors.Is(lt.Err, messages.ErrNoLeader) {
		t.Fatalf("a transfer with no leader: %v, want ErrNoLeader", lt.Err)
	}
	if lt := ask(9); !errors.Is(lt.Err, messages.ErrUnknownMember) {
		t.Fatalf("a transfer to an unknown member: %v, want ErrUnknownMember", lt.Err)
	}
	rig.elect(t)
	rig.net.setDown(2, true)
	if lt := ask(0); !errors.Is(lt.Err, messages.ErrNoTransferee) {
		t.Fatalf("handing over with the only other voter down: %v, want ErrNoTransferee", lt.Err)
	}
	if lt := ask(1); lt.Err != nil || lt.Leader != 1 {
		t.Fatalf("a transfer to the leader itself: %+v, want done", lt)
	}
}

// etcd's strict reconfiguration check, as the raft actor applies it before
// proposing (the rule's cases are membership.CheckStrict's): with voters 1,
// 2 and 3, the actor tells which are up from the transport, and a refused
// change never reaches raft.
func TestRaftStrictReconfiguration(t *testing.T) {
	addNode := func(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChange {
		return &raftpb.ConfChange{Type: typ.Enum(), NodeId: new(id)}
	}
	tests := []struct {
		name string
		down []uint64
		cc   *raftpb.ConfChange
		want error
	}{
		{"add a voter, all up", nil, addNode(raftpb.ConfChangeAddNode, 4), nil},
		{"add a voter, one down", []uint64{3}, addNode(raftpb.ConfChangeAddNode, 4), messages.ErrNotEnoughStarted},
		{"add a learner, one down", []uint64{3}, addNode(raftpb.ConfChangeAddLearnerNode, 4), nil},
		{"remove a voter that is down", []uint64{3}, addNode(raftpb.ConfChangeRemoveNode, 3), nil},
		{"remove a voter that is up, another down", []uint64{3}, addNode(raftpb.ConfChangeRemoveNode, 2), messages.ErrNotEnoughStarted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRaftRigWith(t, slowClock, 1, 2, 3)
			rig.elect(t)
			for _, id := range tc.down {
				rig.net.setDown(id, true)
			}
			rig.system.Root.Send(rig.raft, messages.ProposeConfChange{ID: 5, Change: tc.cc})
			if got := rig.confChangeOutcome(t, tc.cc); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("ProposeConfChange: %v, want %v", got, tc.want)
			}
		})
	}
}

// Promoting a learner is the leader's decision: a follower says so, and the
// leader refuses a learner whose log is far behind its own.
func TestRaftPromotionNeedsACaughtUpLearner(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2)
	promote := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(3))}
	addLearner := messages.ApplyConfChange{Index: 3, Change: &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(3))}}
	if _, err := rig.system.Root.RequestFuture(rig.raft, addLearner, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	failed := func() error {
		rig.system.Root.Send(rig.raft, messages.ProposeConfChange{ID: 6, Change: promote})
		return rig.confChangeOutcome(t, promote)
	}
	if err := failed(); !errors.Is(err, messages.ErrNotLeader) {
		t.Fatalf("promotion asked of a follower: %v, want ErrNotLeader", err)
	}
	rig.elect(t)
	if err := failed(); !errors.Is(err, messages.ErrLearnerNotReady) {
		t.Fatalf("promotion of a learner with an empty log: %v, want ErrLearnerNotReady", err)
	}
}

// actorFunc is an actor that hands each message it gets to fn.
func actorFunc(fn func(any)) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped:
			return
		}
		fn(ctx.Message())
	})
}

// A conf change that comes while an earlier one is unapplied would be
// turned into an empty entry by raft, and its client would wait in vain: it
// is held until the earlier one is applied, then placed.
func TestRaftHoldsAConfChangeWhileOneIsPending(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2, 3)
	rig.elect(t)
	ack := func(app *raftpb.Message) {
		rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: new(uint64(2)), To: new(uint64(1)),
			Term: new(app.GetTerm()), Index: new(app.GetIndex() + uint64(len(app.GetEntries())))})
	}
	ack(rig.sentTo(t, 2, "MsgApp", ofType(raftpb.MsgApp)))

	first := &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(4))}
	rig.system.Root.Send(rig.raft, messages.ProposeConfChange{ID: 5, Change: first})
	if err := rig.confChangeOutcome(t, first); err != nil {
		t.Fatalf("the first conf change: %v", err)
	}
	second := &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(5))}
	rig.system.Root.Send(rig.raft, messages.ProposeConfChange{ID: 6, Change: second})
	rig.status(t) // the second has been handled
	for len(rig.wal) > 0 {
		for _, e := range (<-rig.wal).GetEntries() {
			if e.GetType() == raftpb.EntryConfChange || len(e.GetData()) == 0 {
				t.Fatalf("with the first unapplied, the second was placed (entry %d, %v)", e.GetIndex(), e.GetType())
			}
		}
	}
	if len(rig.kvOther) != 0 {
		t.Fatalf("the second conf change was answered: %v", <-rig.kvOther)
	}
	// Member 2 acknowledges the first: committed, applied, and the second
	// goes in.
	ack(rig.sentTo(t, 2, "the first conf change", func(m *raftpb.Message) bool {
		return m.GetType() == raftpb.MsgApp && slices.ContainsFunc(m.GetEntries(), func(e *raftpb.Entry) bool {
			return e.GetType() == raftpb.EntryConfChange
		})
	}))
	if err := rig.confChangeOutcome(t, second); err != nil {
		t.Fatalf("the second conf change: %v", err)
	}
}

// Followers take a removed leader for the leader until their election
// timeout, but nothing forwarded to it arrives: a proposal is held until a
// leader that is a member is known.
func TestRaftHoldsProposalsWhileTheLeaderIsRemoved(t *testing.T) {
	rig := newRaftRigWith(t, slowClock, 1, 2, 3)
	rig.elect(t) // bootstrap applied
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(5))})
	if st := rig.status(t); st.Leader != 2 {
		t.Fatalf("leader %d, want 2", st.Leader)
	}
	res, err := rig.system.Root.RequestFuture(rig.raft, messages.ApplyConfChange{Index: 9,
		Change: &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(2))}}, 5*time.Second).Result()
	if err != nil || res.(messages.ConfChangeApplied).Err != nil {
		t.Fatalf("removing member 2: %v %+v", err, res)
	}
	rig.system.Root.Send(rig.raft, messages.Propose{ID: 7, Data: []byte("held")})
	rig.status(t)
	for _, m := range rig.net.messages() {
		if m.GetType() == raftpb.MsgProp {
			t.Fatalf("forwarded to removed member %d: %v", m.GetTo(), m)
		}
	}
	if len(rig.kvOther) != 0 {
		t.Fatalf("the proposal was answered: %v", <-rig.kvOther)
	}
	rig.system.Root.Send(rig.raft, &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(3)), To: new(uint64(1)), Term: new(uint64(6))})
	rig.sentTo(t, 3, "the held proposal, forwarded", func(m *raftpb.Message) bool {
		return m.GetType() == raftpb.MsgProp && carries([]byte("held"))(m)
	})
}

// A second add of one id, committed because the member it went through had
// not applied the first, is declined when applied, alike everywhere; raft's
// own entries (no request id) and promotions are not.
func TestDuplicateAddDeclined(t *testing.T) {
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	add := func(typ raftpb.ConfChangeType, id, reqID uint64) raftpb.ConfChangeI {
		return &raftpb.ConfChange{Type: typ.Enum(), NodeId: new(id), Id: new(reqID)}
	}
	for _, c := range []struct {
		name     string
		cc       raftpb.ConfChangeI
		declined bool
	}{
		{"a voter added again", add(raftpb.ConfChangeAddNode, 2, 7), true},
		{"a voter added as a learner", add(raftpb.ConfChangeAddLearnerNode, 2, 7), true},
		{"a learner added again", add(raftpb.ConfChangeAddLearnerNode, 3, 7), true},
		{"a learner promoted", add(raftpb.ConfChangeAddNode, 3, 7), false},
		{"a new member", add(raftpb.ConfChangeAddNode, 4, 7), false},
		{"raft's bootstrap entry", add(raftpb.ConfChangeAddNode, 2, 0), false},
		{"a removal", add(raftpb.ConfChangeRemoveNode, 2, 7), false},
		{"a v2 change", &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(2))}}}, false},
	} {
		err := duplicateAdd(cs, c.cc)
		if c.declined != (err != nil) || (err != nil && !errors.Is(err, messages.ErrMemberExists)) {
			t.Errorf("%s: duplicateAdd = %v, want declined %v with ErrMemberExists", c.name, err, c.declined)
		}
	}
}
