package kv

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// The db's write transaction is committed in batches, as etcd's backend
// commits: at most commitInterval after the first entry it holds, or once
// it holds commitEntries entries. A commit costs an fsync; between commits
// the entries are durable in the WAL, which a restart replays from the db's
// applied index on.
const (
	commitInterval = 100 * time.Millisecond
	commitEntries  = 10000
)

// commitTick is the kv actor's reminder to commit the db.
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
	if err := a.st.be.compactHistory(a.cfg.HistoryEvents, a.cfg.HistoryBytes); err != nil {
		a.sendAnswers(ctx)
		a.fatal(err)
		return
	}
	// The hub hears of the changes before any commit that holds them,
	// and before any client of them.
	if ev := a.st.takeEvents(); len(ev) > 0 && a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchEvents{Events: ev, Revision: a.st.revision()})
	}
	a.sendAnswers(ctx)
	a.m.AppliedEntries.Add(float64(len(m.GetEntries())))
	a.m.AppliedIndex.Set(float64(a.applied))
	a.m.Revision.Set(float64(a.st.revision()))
	a.m.HistoryEvents.Set(float64(a.st.be.meta.histEvents))
	a.m.HistoryCompacted.Set(float64(a.st.be.meta.compacted))
	if a.st.be.pending >= commitEntries {
		a.commit()
	} else if a.st.be.pending > 0 && a.commitTimer == nil {
		self, root := ctx.Self(), ctx.ActorSystem().Root
		a.commitTimer = time.AfterFunc(commitInterval, func() { root.Send(self, commitTick{}) })
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
	if a.failed || a.st.be.tx == nil || a.st.be.pending == 0 {
		return
	}
	if err := a.st.be.commit(); err != nil {
		a.fatal(err)
		return
	}
	if a.cfg.Watch != nil && a.root != nil {
		a.root.Send(a.cfg.Watch, messages.WatchCommitted{Revision: a.st.revision()})
	}
}

func (a *Actor) applyEntry(ctx actor.Context, e *raftpb.Entry) error {
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
		defer a.st.be.setApplied(idx, e.GetTerm(), nil)
		if len(e.GetData()) == 0 {
			return nil // a new leader's empty entry
		}
		return a.applyCommands(ctx, e, a.applyCommand)
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			a.refuseConfChange(ctx, e, err)
			return nil
		}
		url := ""
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
			// raftexample's bootstrap entries name no URL: keep the one
			// this member knows.
			url = membership.KeepURL(string(cc.GetContext()), a.st.members[cc.GetNodeId()])
		}
		cs, declined, err := a.applyConfChange(ctx, idx, &cc, url)
		if err != nil {
			return err
		}
		a.applied = idx
		a.confState = cs
		a.st.be.setApplied(idx, e.GetTerm(), cs)
		if declined != nil {
			// raft left its configuration as it was: so do the members.
			a.fail(ctx, cc.GetId(), declined)
			return nil
		}
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
			err = a.st.addMember(cc.GetNodeId(), url)
		case raftpb.ConfChangeRemoveNode:
			err = a.st.removeMember(cc.GetNodeId())
		}
		if err != nil {
			return err
		}
		a.settle(ctx, cc.GetId())
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			a.refuseConfChange(ctx, e, err)
			return nil
		}
		cs, _, err := a.applyConfChange(ctx, idx, &cc, "")
		if err != nil {
			return err
		}
		a.applied = idx
		a.confState = cs
		a.st.be.setApplied(idx, e.GetTerm(), cs)
	default:
		// raft knows no other type; a log that holds one was written by
		// something else, and is refused like any entry that does not
		// decode.
		a.applied = idx
		a.st.be.setApplied(idx, e.GetTerm(), nil)
		a.refuseCommand(ctx, idx, 0, fmt.Errorf("%w: unknown entry type %d", ErrBadCommand, e.GetType()))
	}
	return nil
}

// applyCommands decodes a normal entry's commands and hands each to apply
// with the entry's index; an entry or command that does not decode is
// refused (refuse.go), never fatal. The errors apply returns are the db's.
func (a *Actor) applyCommands(ctx actor.Context, e *raftpb.Entry, apply func(actor.Context, command, uint64) error) error {
	idx := e.GetIndex()
	c, err := a.codec.decode(e.GetData())
	if err != nil {
		var id uint64
		if a.cfg.Format == FormatNative {
			id = peekReqID(e.GetData())
			delete(a.inflight, id)
		}
		a.refuseCommand(ctx, idx, id, err)
		return nil
	}
	if c.op != opBatch {
		delete(a.inflight, c.reqID)
		return apply(ctx, c, idx)
	}
	cmds, err := splitBatch(c.value)
	if err != nil {
		a.refuseBatch(ctx, idx, c.reqID, err)
		return nil
	}
	delete(a.inflight, c.reqID)
	for _, data := range cmds {
		c, err := decodeCommand(data)
		if err != nil {
			a.refuseCommand(ctx, idx, peekReqID(data), fmt.Errorf("batch: %w", err))
			continue
		}
		if err := apply(ctx, c, idx); err != nil {
			return err
		}
	}
	return nil
}

// refuseConfChange records a conf change entry that does not decode as
// applied and refused. raft's configuration stays as it was: raft lets an
// application leave a committed conf change unapplied, and every member
// leaves this one alike.
func (a *Actor) refuseConfChange(ctx actor.Context, e *raftpb.Entry, err error) {
	if e.GetIndex() > a.applied {
		a.applied = e.GetIndex()
		a.st.be.setApplied(e.GetIndex(), e.GetTerm(), nil)
	}
	a.refuseCommand(ctx, e.GetIndex(), 0, fmt.Errorf("%w: conf change: %w", ErrBadCommand, err))
}

// applyCommand applies one client command of the entry at index rev and
// answers its client. A command the db cannot hold is refused, and a write
// past the quota is the client's failure; any other error is the db's, and
// fatal.
func (a *Actor) applyCommand(ctx actor.Context, c command, rev uint64) error {
	if skip, err := a.duplicate(c.reqID); skip || err != nil {
		return err // applied before, or too old to tell (dedup.go); or the db failed
	}
	var res messages.Result
	var err error
	if c.op == opTxn {
		t, terr := decodeTxn(c.value)
		if terr != nil {
			a.refuseCommand(ctx, rev, c.reqID, terr)
			return nil
		}
		_, waiting := a.writes[c.reqID]
		res.Succeeded, res.Results, err = a.st.applyTxn(t, rev, a.cfg.Quota, waiting)
	} else {
		if cerr := checkStored(c); cerr != nil {
			a.refuseCommand(ctx, rev, c.reqID, cerr)
			return nil
		}
		res, err = a.st.apply(c, rev, a.cfg.Quota)
	}
	switch {
	case errors.Is(err, ErrNoSpace):
		a.fail(ctx, c.reqID, err)
		return nil
	case err != nil:
		return err
	}
	a.settleWith(ctx, c.reqID, res)
	return nil
}

// replayEntry handles an entry the db already holds: its data is not
// written again, but raft applies its conf change (raft's configuration is
// that of the snapshot it restored, older than the db's), and its writes'
// clients hear they are applied. The ConfState the db records stays the
// db's own, which is as of its applied index.
func (a *Actor) replayEntry(ctx actor.Context, e *raftpb.Entry) error {
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) == 0 {
			return nil
		}
		return a.applyCommands(ctx, e, a.settleReplayed)
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			a.refuseConfChange(ctx, e, err)
			return nil
		}
		_, declined, err := a.applyConfChange(ctx, e.GetIndex(), &cc, a.st.members[cc.GetNodeId()])
		if err != nil {
			return err
		}
		if declined != nil {
			a.fail(ctx, cc.GetId(), declined)
		} else {
			a.settle(ctx, cc.GetId())
		}
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			a.refuseConfChange(ctx, e, err)
			return nil
		}
		if _, _, err := a.applyConfChange(ctx, e.GetIndex(), &cc, ""); err != nil {
			return err
		}
	}
	return nil
}

// settleReplayed answers the client of a write the db already holds, where
// the db proves its outcome: a publication always applies, a put did if its
// key's last write is that entry. A put the quota refused, or one
// overwritten since, a delete (how many keys it removed) and a transaction
// (which branch ran) are not proven: the client times out, told the outcome
// is unknown, as for any write whose answer was lost.
func (a *Actor) settleReplayed(ctx actor.Context, c command, index uint64) error {
	switch c.op {
	case opTxn, opDelete:
		// Which branch ran and what it read, how many keys a delete
		// removed: not in the db.
		return nil
	case opPut:
		if err := checkStored(c); err != nil {
			a.fail(ctx, c.reqID, fmt.Errorf("%w: %w", messages.ErrEntryRefused, err))
			return nil
		}
		r, ok, err := a.st.be.get(c.key)
		if err != nil {
			return err
		}
		if !ok || r.modRev != index {
			return nil
		}
		a.settleWith(ctx, c.reqID, messages.Result{Index: index, Revision: index})
		return nil
	}
	a.settle(ctx, c.reqID)
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

// restore replaces the whole state with a snapshot received from the leader:
// the db that came with it (native format), or the state its data carries
// (raftexample's JSON).
func (a *Actor) restore(ctx actor.Context, s *raftpb.Snapshot) {
	if a.failed {
		return
	}
	idx := s.GetMetadata().GetIndex()
	if idx <= a.applied {
		a.cfg.Logger.Warn("ignored a snapshot older than the applied state", zap.Uint64("snapshot", idx), zap.Uint64("applied", a.applied))
		return
	}
	cs := raftpb.EnsureConfState(proto.Clone(s.GetMetadata().GetConfState()).(*raftpb.ConfState))
	var err error
	if inlineSnapshot(a.cfg.Format, s) {
		err = a.restoreInline(s.GetData(), idx, s.GetMetadata().GetTerm(), cs)
	} else {
		err = a.restoreDB(idx)
	}
	if err != nil {
		a.fatal(fmt.Errorf("restore snapshot at index %d: %w", idx, err))
		return
	}
	a.lastSnap, a.logBytes = a.applied, 0
	a.st.events = nil
	if a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchReset{Revision: a.st.revision(), Compacted: a.st.be.meta.compacted})
	}
	a.cfg.Logger.Info("restored state from a snapshot", zap.Uint64("index", idx), zap.Uint64("applied", a.applied), zap.Int("keys", a.st.keys()))
	ctx.Send(a.cfg.Raft, messages.MembersRestored{Members: a.st.membersCopy(), Removed: a.st.removedIDs()})
	a.serveReads(ctx)
}

// inlineSnapshot says whether a snapshot carries the state in its data: the
// raftexample format's always do (an empty state included), the native
// format's only in the previous layout (its db goes with it now).
func inlineSnapshot(f Format, s *raftpb.Snapshot) bool {
	return f == FormatRaftexample || len(s.GetData()) > 0
}

func (a *Actor) restoreInline(data []byte, idx, term uint64, cs *raftpb.ConfState) error {
	known := a.st.membersCopy()
	if err := a.st.reset(idx); err != nil {
		return err
	}
	if err := a.codec.restore(a.st, data, idx, cs, known); err != nil {
		return err
	}
	a.st.be.setApplied(idx, term, cs)
	if err := a.st.be.commit(); err != nil {
		return err
	}
	a.applied, a.confState = idx, cs
	return nil
}

// restoreDB installs the db the transport saved with the snapshot. Its
// applied index may be past the snapshot's: the entries between reach this
// actor again, and replayEntry passes them to raft without writing them.
func (a *Actor) restoreDB(idx uint64) error {
	if a.cfg.SnapshotDB == nil {
		return errors.New("no db came with the snapshot, and none is expected")
	}
	if err := a.cfg.State.install(a.cfg.SnapshotDB(idx)); err != nil {
		return err
	}
	a.applied, _ = a.cfg.State.Applied()
	a.confState = a.cfg.State.ConfState()
	return nil
}

// maybeSnapshot takes a snapshot every SnapshotCount applied entries, or
// once they hold SnapshotBytes: the db commits first, so that the log is never compacted past what it holds
// durably, then the snapshotter records it. The native format's snapshot
// carries no data (the db is sent to followers that need it); raftexample's
// carries the JSON of the map, which the encoder child builds from a read
// transaction while applies go on. One snapshot is encoded at a time.
func (a *Actor) maybeSnapshot(ctx actor.Context) {
	if a.cfg.SnapshotCount == 0 || a.encoding || a.applied == a.lastSnap ||
		(a.applied-a.lastSnap < a.cfg.SnapshotCount && a.logBytes < a.cfg.SnapshotBytes) {
		return
	}
	// Counted as taken even if it fails, so that a failing encoder is retried
	// SnapshotCount entries on rather than after every apply.
	a.lastSnap, a.logBytes = a.applied, 0
	if a.st.be.pending > 0 {
		a.commit()
		if a.failed {
			return
		}
	}
	cs := proto.Clone(a.confState).(*raftpb.ConfState)
	if a.cfg.Format == FormatNative {
		ctx.Send(a.cfg.Snapshotter, messages.CreateSnapshot{Index: a.applied, ConfState: cs})
		return
	}
	tx, err := a.st.be.db.Begin(false)
	if err != nil {
		a.fatal(fmt.Errorf("begin a read transaction for a snapshot: %w", err))
		return
	}
	a.encoding, a.encodingTx = true, tx
	ctx.Send(a.encoder, encodeSnapshot{index: a.applied, confState: cs, tx: tx})
}

// snapshotEncoded is the encoder's word that it is done with its read
// transaction.
func (a *Actor) snapshotEncoded(ctx actor.Context, m snapshotEncoded) {
	a.encoding, a.encodingTx = false, nil
	if m.err != nil {
		// The log still holds every entry since the last snapshot, so the
		// state is safe; only compaction waits.
		a.cfg.Logger.Error("snapshot not taken", zap.Uint64("index", m.index), zap.Error(m.err))
	}
	a.maybeSnapshot(ctx)
}
