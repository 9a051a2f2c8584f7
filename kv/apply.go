package kv

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

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
	for _, e := range m.GetEntries() {
		if err := a.applyEntry(ctx, e); err != nil {
			a.fatal(fmt.Errorf("apply entry %d: %w", e.GetIndex(), err))
			return
		}
	}
	a.m.AppliedEntries.Add(float64(len(m.GetEntries())))
	a.m.AppliedIndex.Set(float64(a.applied))
	a.cfg.Deliver(m.GetResponses())
	a.proposePending(ctx) // room in flight again, perhaps
	a.serveReads(ctx)
	a.maybeSnapshot(ctx)
}

func (a *Actor) applyEntry(ctx actor.Context, e *raftpb.Entry) error {
	idx := e.GetIndex()
	if idx <= a.applied {
		// Already in the state: covered by a restored snapshot.
		return nil
	}
	if idx != a.applied+1 {
		return fmt.Errorf("gap in the log: applied %d, next entry %d", a.applied, idx)
	}
	switch e.GetType() {
	case raftpb.EntryNormal:
		a.applied = idx
		if len(e.GetData()) == 0 {
			return nil // a new leader's empty entry
		}
		c, err := a.codec.decode(e.GetData())
		if err != nil {
			return err
		}
		delete(a.inflight, c.reqID)
		if c.op == opBatch {
			return decodeBatch(c.value, func(c command) error {
				a.st.apply(c)
				a.settle(ctx, c.reqID)
				return nil
			})
		}
		a.st.apply(c)
		a.settle(ctx, c.reqID)
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("decode conf change: %w", err)
		}
		url := ""
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
			url = string(cc.GetContext())
			if url == "" {
				// raftexample's bootstrap entries name no URL: keep the
				// one this member knows.
				url = a.st.members[cc.GetNodeId()]
			}
		}
		declined, err := a.applyConfChange(ctx, idx, &cc, url)
		if err != nil {
			return err
		}
		a.applied = idx
		if declined != nil {
			// raft left its configuration as it was: so do the members.
			a.fail(ctx, cc.GetId(), declined)
			return nil
		}
		switch cc.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
			a.st.members[cc.GetNodeId()] = url
			delete(a.st.removed, cc.GetNodeId())
		case raftpb.ConfChangeRemoveNode:
			delete(a.st.members, cc.GetNodeId())
			delete(a.st.clients, cc.GetNodeId())
			a.st.removed[cc.GetNodeId()] = true
		}
		a.settle(ctx, cc.GetId())
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("decode conf change v2: %w", err)
		}
		if _, err := a.applyConfChange(ctx, idx, &cc, ""); err != nil {
			return err
		}
		a.applied = idx
	default:
		return fmt.Errorf("unknown entry type %v", e.GetType())
	}
	return nil
}

// applyConfChange has the raft actor apply a committed conf change and waits
// for the resulting ConfState, which later snapshots must carry. declined
// is the raft actor's reason for treating the change as a no-op; err means
// the state machine cannot go on.
func (a *Actor) applyConfChange(ctx actor.Context, idx uint64, cc raftpb.ConfChangeI, url string) (declined, err error) {
	res, err := ctx.RequestFuture(a.cfg.Raft, messages.ApplyConfChange{Index: idx, Change: cc, PeerURL: url}, a.cfg.ConfChangeTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("raft actor did not apply conf change: %w", err)
	}
	applied, ok := res.(messages.ConfChangeApplied)
	if !ok {
		return nil, fmt.Errorf("unexpected answer %T to ApplyConfChange", res)
	}
	a.confState = raftpb.EnsureConfState(applied.ConfState)
	return applied.Err, nil
}

// restore replaces the whole state with a snapshot received from the leader.
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
	st, err := a.codec.unmarshal(s.GetData(), cs, a.st.members)
	if err != nil {
		a.fatal(fmt.Errorf("restore snapshot at index %d: %w", idx, err))
		return
	}
	a.st = st
	a.applied = idx
	a.lastSnap = idx
	a.confState = cs
	a.cfg.Logger.Info("restored state from a snapshot", zap.Uint64("index", idx), zap.Int("keys", st.data.len()))
	ctx.Send(a.cfg.Raft, messages.MembersRestored{Members: st.membersCopy(), Removed: st.removedIDs()})
	a.serveReads(ctx)
}

// maybeSnapshot hands the state to the snapshot encoder every SnapshotCount
// applied entries. The kv actor only freezes the state; the encoder reads
// the frozen view while applies go on. One snapshot is encoded at a time:
// a due snapshot waits for the previous one, which bounds the memory held
// by frozen views to one.
func (a *Actor) maybeSnapshot(ctx actor.Context) {
	if a.cfg.SnapshotCount == 0 || a.encoding || a.applied-a.lastSnap < a.cfg.SnapshotCount {
		return
	}
	// Counted as taken even if it fails, so that a failing encoder is retried
	// SnapshotCount entries on rather than after every apply.
	a.lastSnap = a.applied
	a.encoding = true
	ctx.Send(a.encoder, encodeSnapshot{
		index:     a.applied,
		confState: proto.Clone(a.confState).(*raftpb.ConfState),
		state:     a.st.freeze(),
	})
}

// snapshotEncoded is the encoder's word that it is done with the frozen
// state: the store's pieces are its own again.
func (a *Actor) snapshotEncoded(ctx actor.Context, m snapshotEncoded) {
	a.encoding = false
	a.st.data.thaw()
	if m.err != nil {
		// The log still holds every entry since the last snapshot, so the
		// state is safe; only compaction waits.
		a.cfg.Logger.Error("snapshot not taken", zap.Uint64("index", m.index), zap.Error(m.err))
	}
	a.maybeSnapshot(ctx)
}
