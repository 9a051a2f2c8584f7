package kv

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// commitTick is the kv actor's reminder to commit the db, at the
// backend's batch interval (backend.BatchInterval).
type commitTick struct{}

// applyMsg applies a MsgStorageApply's entries in index order, then hands its
// responses back to raft: raft learns an entry is applied only once it is.
func (a *Actor) applyMsg(ctx actor.Context, m *raftpb.Message) {
	if m.GetType() != raftpb.MsgStorageApply {
		a.cfg.Logger.Warn("kv actor ignored a raft message", zap.Stringer("type", m.GetType()))
		return
	}
	if a.failed {
		return
	}
	// Answers wait for the hub (see Actor.answers). On a fatal error the
	// entries they answer are still committed and applied here: they go
	// out before failAll answers the rest.
	for _, e := range m.GetEntries() {
		if err := a.applyEntry(ctx, e); err != nil {
			a.sendAnswers(ctx)
			a.fatal(fmt.Errorf("apply entry %d: %w", e.GetIndex(), err))
			return
		}
		a.logBytes += uint64(len(e.GetData()))
	}
	a.noteApplied(m.GetEntries())
	if err := a.st.CompactHistory(a.cfg.HistoryEvents, a.cfg.HistoryBytes); err != nil {
		a.sendAnswers(ctx)
		a.fatal(err)
		return
	}
	// The hub hears of the changes before any commit that holds them,
	// and before any client of them.
	if ev := a.st.TakeEvents(); len(ev) > 0 && a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchEvents{Events: ev, Revision: a.st.Revision()})
	}
	a.sendAnswers(ctx)
	a.m.AppliedEntries.Add(float64(len(m.GetEntries())))
	a.m.AppliedIndex.Set(float64(a.applied))
	a.m.Revision.Set(float64(a.st.Revision()))
	a.m.HistoryEvents.Set(float64(a.st.HistoryEvents()))
	a.m.HistoryCompacted.Set(float64(a.st.Compacted()))
	if be := a.st.Backend(); be.CommitDue() {
		a.commit()
	} else if be.Pending() > 0 && a.commitTimer == nil {
		self, root := ctx.Self(), ctx.ActorSystem().Root
		a.commitTimer = time.AfterFunc(backend.BatchInterval, func() { root.Send(self, commitTick{}) })
	}
	a.cfg.Deliver(m.GetResponses())
	a.proposePending(ctx) // room in flight again, perhaps
	a.serveReads(ctx)
	a.maybeSnapshot(ctx)
}

// commit makes what was applied durable in the db. A failure stops the
// member: the db's state is unknown, and the WAL cannot be compacted past
// it.
func (a *Actor) commit() {
	if a.failed || a.st.Backend().Pending() == 0 {
		return
	}
	// A failpoint (scripts/build-failpoints.sh); `return` fails the commit.
	// gofail: var kvBeforeCommit struct{}
	// a.fatal(fmt.Errorf("failpoint kvBeforeCommit"))
	// return

	if err := a.st.Commit(); err != nil {
		a.fatal(err)
		return
	}
	a.noteState()
	if a.cfg.Watch != nil && a.root != nil {
		a.root.Send(a.cfg.Watch, messages.WatchCommitted{Revision: a.st.Revision(), Compacted: a.st.Compacted()})
	}
}

func (a *Actor) applyEntry(ctx actor.Context, e *raftpb.Entry) error {
	// A failpoint (scripts/build-failpoints.sh); `return` fails the apply.
	// gofail: var kvBeforeApply struct{}
	// return fmt.Errorf("failpoint kvBeforeApply")

	idx := e.GetIndex()
	if idx <= a.applied {
		// The db holds it already: it came with a snapshot's db, which is
		// ahead of the snapshot raft restored. raft still needs its conf
		// changes, and a client may be waiting for it.
		return a.replayEntry(ctx, e)
	}
	if idx != a.applied+1 {
		return fmt.Errorf("gap in the log: applied %d, next entry %d", a.applied, idx)
	}
	switch e.GetType() {
	case raftpb.EntryNormal:
		a.applied = idx
		res, err := a.ap.Apply(e, a.waiting)
		a.settleApplied(res)
		return err
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		return a.applyConfChangeEntry(ctx, e)
	default:
		// raft knows no other type; a log that holds one was written by
		// something else, and is refused like any entry that does not
		// decode.
		a.refuseEntry(e, fmt.Errorf("unknown entry type %d", e.GetType()))
	}
	return nil
}

// applyConfChangeEntry applies a conf change entry past the applied index:
// raft applies it first (applyConfChange), then the store's member lists
// follow, unless raft declined it.
func (a *Actor) applyConfChangeEntry(ctx actor.Context, e *raftpb.Entry) error {
	idx := e.GetIndex()
	cc, v1, err := confChangeOf(e)
	if err != nil {
		a.refuseEntry(e, fmt.Errorf("conf change: %w", err))
		return nil
	}
	url := ""
	if v1 != nil && addsMember(v1) {
		// raftexample's bootstrap entries name no URL: keep the one this
		// member knows.
		known, _ := a.st.Member(v1.GetNodeId())
		url = membership.KeepURL(string(v1.GetContext()), known)
	}
	cs, declined, err := a.applyConfChange(ctx, idx, cc, url)
	if err != nil {
		return err
	}
	a.applied = idx
	a.confState = cs
	a.st.SetApplied(idx, e.GetTerm(), cs)
	if v1 == nil {
		a.commitConfChange(ctx)
		return nil // a ConfChangeV2 names no member of ours to record
	}
	if declined != nil {
		// raft left its configuration as it was: so do the members.
		a.commitConfChange(ctx)
		a.fail(ctx, v1.GetId(), declined)
		return nil
	}
	switch {
	case addsMember(v1):
		err = a.st.AddMember(v1.GetNodeId(), url)
	case v1.GetType() == raftpb.ConfChangeRemoveNode:
		err = a.st.RemoveMember(v1.GetNodeId())
	}
	if err != nil {
		return err
	}
	a.commitConfChange(ctx)
	a.settle(ctx, v1.GetId())
	if v1.GetNodeId() == a.cfg.ID && addsMember(v1) {
		a.publish(ctx) // a joining member learns here that it is one
	}
	return nil
}

// commitConfChange commits the db once a conf change entry is applied, so
// that a kv actor rebuilt after a panic never has one to apply again
// (rebuild.go): raft applied it already. The hub hears first of the
// changes before it, as before any commit. Conf changes are rare enough
// for a commit each to cost nothing.
func (a *Actor) commitConfChange(ctx actor.Context) {
	if ev := a.st.TakeEvents(); len(ev) > 0 && a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchEvents{Events: ev, Revision: a.st.Revision()})
	}
	a.commit()
}

// confChangeOf decodes a conf change entry of either version; v1 is set
// for the first, whose changes name one member, its URL and a request id.
func confChangeOf(e *raftpb.Entry) (cc raftpb.ConfChangeI, v1 *raftpb.ConfChange, err error) {
	if e.GetType() == raftpb.EntryConfChange {
		v1 = new(raftpb.ConfChange)
		return v1, v1, proto.Unmarshal(e.GetData(), v1)
	}
	v2 := new(raftpb.ConfChangeV2)
	return v2, nil, proto.Unmarshal(e.GetData(), v2)
}

// addsMember says whether cc adds (or promotes, or updates) a member.
func addsMember(cc *raftpb.ConfChange) bool {
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
		return true
	}
	return false
}

// waiting says whether a write of request id reqID waits on this member:
// only then does the applier read a transaction's results.
func (a *Actor) waiting(reqID uint64) bool {
	_, ok := a.writes[reqID]
	return ok
}

// settleApplied answers the requests of an entry the applier applied (or
// replayed), and forgets its proposal: it is in the log.
func (a *Actor) settleApplied(res apply.Applied) {
	if res.BatchRefused != nil {
		ids := []uint64{res.Proposal}
		if b, ok := a.inflight[res.Proposal]; ok {
			ids = b.reqIDs
		}
		for _, id := range ids {
			a.fail(nil, id, res.BatchRefused)
		}
	}
	delete(a.inflight, res.Proposal)
	a.leasesApplied(res.Leases)
	for _, o := range res.Outcomes {
		if o.Err != nil {
			a.fail(nil, o.ReqID, o.Err)
		} else {
			a.settleWith(nil, o.ReqID, o.Result)
		}
	}
}

// refuseEntry records an entry the state machine cannot take as a whole
// as applied and refused. raft's configuration stays as it was: raft lets
// an application leave a committed conf change unapplied, and every member
// leaves this one alike.
func (a *Actor) refuseEntry(e *raftpb.Entry, reason error) {
	if e.GetIndex() > a.applied {
		a.applied = e.GetIndex()
		a.st.SetApplied(e.GetIndex(), e.GetTerm(), nil)
	}
	a.ap.Refuse(e.GetIndex(), reason)
}

// replayEntry handles an entry the db already holds: its data is not
// written again (the applier's Replay answers what the db proves), but
// raft applies its conf change (raft's configuration is that of the
// snapshot it restored, older than the db's). The ConfState the db
// records stays the db's own, which is as of its applied index.
func (a *Actor) replayEntry(ctx actor.Context, e *raftpb.Entry) error {
	switch e.GetType() {
	case raftpb.EntryNormal:
		res, err := a.ap.Replay(e)
		a.settleApplied(res)
		return err
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		cc, v1, err := confChangeOf(e)
		if err != nil {
			a.refuseEntry(e, fmt.Errorf("conf change: %w", err))
			return nil
		}
		url := ""
		if v1 != nil {
			url, _ = a.st.Member(v1.GetNodeId())
		}
		_, declined, err := a.applyConfChange(ctx, e.GetIndex(), cc, url)
		if err != nil || v1 == nil {
			return err
		}
		if declined != nil {
			a.fail(ctx, v1.GetId(), declined)
		} else {
			a.settle(ctx, v1.GetId())
		}
	}
	return nil
}

// applyConfChange has the raft actor apply a committed conf change and waits
// for the resulting ConfState, which the db and later snapshots must carry.
// declined is the raft actor's reason for treating the change as a no-op;
// err means the state machine cannot go on.
func (a *Actor) applyConfChange(ctx actor.Context, idx uint64, cc raftpb.ConfChangeI, url string) (cs *raftpb.ConfState, declined, err error) {
	res, err := ctx.RequestFuture(a.cfg.Raft, messages.ApplyConfChange{Index: idx, Change: cc, PeerURL: url}, a.cfg.ConfChangeTimeout).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("raft actor did not apply conf change: %w", err)
	}
	applied, ok := res.(messages.ConfChangeApplied)
	if !ok {
		return nil, nil, fmt.Errorf("unexpected answer %T to ApplyConfChange", res)
	}
	return raftpb.EnsureConfState(applied.ConfState), applied.Err, nil
}
