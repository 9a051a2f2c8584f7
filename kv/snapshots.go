package kv

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

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
	a.abortDefrag(fmt.Errorf("%w: a snapshot from the leader replaced the state", messages.ErrDefragAborted))
	a.m.Health.SnapshotInProgress.Inc()
	var err error
	if inlineSnapshot(a.cfg.Format, s) {
		err = a.restoreInline(s.GetData(), idx, s.GetMetadata().GetTerm(), cs)
	} else {
		err = a.restoreDB(idx)
	}
	a.m.Health.SnapshotInProgress.Dec()
	if err != nil {
		a.fatal(fmt.Errorf("restore snapshot at index %d: %w", idx, err))
		return
	}
	a.noteState()
	a.lastSnap, a.logBytes = a.applied, 0
	a.st.TakeEvents() // the watch hub hears of a reset, not of these
	if a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchReset{Revision: a.st.Revision(), Compacted: a.st.Compacted()})
	}
	a.cfg.Logger.Info("restored state from a snapshot", zap.Uint64("index", idx), zap.Uint64("applied", a.applied), zap.Int("keys", a.st.Keys()))
	ctx.Send(a.cfg.Raft, messages.MembersRestored{Members: a.st.Members(), Removed: a.st.Removed()})
	a.serveReads(ctx)
}

// inlineSnapshot says whether a snapshot carries the state in its data: the
// raftexample format's always do (an empty state included), the native
// format's only in the previous layout (its db goes with it now).
func inlineSnapshot(f apply.Format, s *raftpb.Snapshot) bool {
	return f == apply.FormatRaftexample || len(s.GetData()) > 0
}

func (a *Actor) restoreInline(data []byte, idx, term uint64, cs *raftpb.ConfState) error {
	known := a.st.Members()
	if err := a.st.Reset(idx); err != nil {
		return err
	}
	if err := a.codec.Restore(a.st, data, idx, cs, known); err != nil {
		return err
	}
	a.st.SetApplied(idx, term, cs)
	if err := a.st.Commit(); err != nil {
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
	retired, err := a.st.Install(a.cfg.SnapshotDB(idx))
	if err != nil {
		return err
	}
	if retired != nil {
		// Freeing the old file takes a while for a large one; a member
		// installing a snapshot is catching up, and serves nothing
		// linearizable until it has.
		_ = retired.Close()
	}
	a.applied, _ = a.st.Applied()
	a.confState = a.st.ConfState()
	return nil
}

// maybeSnapshot takes a snapshot every SnapshotCount applied entries, or
// once they hold SnapshotBytes: the db commits first, so that the log is never compacted past what it holds
// durably, then the snapshotter records it. The native format's snapshot
// carries no data (the db is sent to followers that need it); raftexample's
// carries the JSON of the map, which the encoder child builds from a read
// transaction while applies go on. One snapshot is encoded at a time.
func (a *Actor) maybeSnapshot(ctx actor.Context) {
	// Not while a defragmentation copies the db: a crash after the copy
	// replaced the file needs the log from the copy's index on.
	if a.cfg.SnapshotCount == 0 || a.encoding || a.defrag != nil || a.applied == a.lastSnap ||
		(a.applied-a.lastSnap < a.cfg.SnapshotCount && a.logBytes < a.cfg.SnapshotBytes) {
		return
	}
	// Counted as taken even if it fails, so that a failing encoder is retried
	// SnapshotCount entries on rather than after every apply.
	a.lastSnap, a.logBytes = a.applied, 0
	if a.st.Backend().Pending() > 0 {
		a.commit()
		if a.failed {
			return
		}
	}
	// A failpoint (scripts/build-failpoints.sh): the db holds the applied
	// index durably, no .snap names it yet; `return` skips this snapshot.
	// gofail: var kvAfterCommitBeforeSnap struct{}
	// return

	cs := proto.Clone(a.confState).(*raftpb.ConfState)
	if a.cfg.Format == apply.FormatNative {
		ctx.Send(a.cfg.Snapshotter, messages.CreateSnapshot{Index: a.applied, ConfState: cs})
		return
	}
	tx, err := a.st.Backend().ReadTx()
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
