package kv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/messages"
)

// maxDefragReplay bounds what the kv actor keeps to apply again to the
// compact copy: the entries applied while it was made. Past it the copy is
// dropped (messages.ErrDefragAborted): replaying more would hold the actor,
// and every request behind it, longer than the copy saved.
const maxDefragReplay = 64 << 20

// defragRun is a defragmentation in progress: the copy is made by the
// copier child from a read transaction of the db at index from.
type defragRun struct {
	tx      *bolt.Tx // the copy's read transaction, which the copier ends
	from    uint64
	path    string
	cancel  *atomic.Bool
	waiters []*actor.PID
	// entries are those applied since from, to apply again to the copy;
	// bytes their size. aborted says why the copy will be dropped.
	entries []*raftpb.Entry
	bytes   int
	aborted error
	started time.Time
	before  int64
}

// copyDB asks the copier to write a compact copy of the db as tx sees it
// to path. Sender: kv actor, one at a time. The copier ends tx.
type copyDB struct {
	tx     *bolt.Tx
	path   string
	cancel *atomic.Bool
}

// dbCopied is the copier's answer to copyDB.
type dbCopied struct {
	path string
	err  error
}

// retire asks the copier to close the db file a copy replaced: the close
// frees the old file's blocks, which takes as long as deleting it
// (backend.Backend.Replace). Sender: kv actor, after an install.
type retire struct{ f io.Closer }

// copier is a child of the kv actor that makes compact copies of the db,
// so that the kv actor goes on applying meanwhile, and frees the files
// they replace.
type copier struct{}

func (copier) Receive(ctx actor.Context) {
	if r, ok := ctx.Message().(retire); ok {
		_ = r.f.Close()
		return
	}
	m, ok := ctx.Message().(copyDB)
	if !ok {
		return
	}
	err := backend.CopyCompact(m.tx, m.path, m.cancel)
	if rerr := m.tx.Rollback(); rerr != nil && err == nil {
		err = fmt.Errorf("end the copy's read transaction: %w", rerr)
	}
	ctx.Send(ctx.Parent(), dbCopied{path: m.path, err: err})
}

// defragment starts a defragmentation, or adds the requester to the one in
// progress.
func (a *Actor) defragment(ctx actor.Context) {
	if a.refuse(ctx) {
		return
	}
	if a.defrag != nil {
		a.defrag.waiters = append(a.defrag.waiters, ctx.Sender())
		return
	}
	// The copy starts from the last commit: commit first, so that it holds
	// everything applied, and from is the applied index.
	a.commit()
	if a.failed {
		ctx.Respond(messages.ErrStopped)
		return
	}
	be := a.st.Backend()
	tx, err := be.ReadTx()
	if err != nil {
		ctx.Respond(fmt.Errorf("begin the copy's read transaction: %w", err))
		return
	}
	if a.copier == nil {
		a.copier = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return copier{} }))
	}
	d := &defragRun{
		tx: tx, from: a.applied, path: be.Path() + ".defrag", cancel: new(atomic.Bool),
		waiters: []*actor.PID{ctx.Sender()}, started: time.Now(), before: dbSize(be),
	}
	a.defrag = d
	ctx.Send(a.copier, copyDB{tx: tx, path: d.path, cancel: d.cancel})
	a.cfg.Logger.Info("defragmenting the db", zap.Uint64("index", d.from), zap.Int64("size", d.before))
}

// noteApplied keeps the entries applied during a copy, to apply them again
// to it; a conf change, or too many bytes, drop the copy instead.
func (a *Actor) noteApplied(entries []*raftpb.Entry) {
	d := a.defrag
	if d == nil || d.aborted != nil {
		return
	}
	for _, e := range entries {
		switch {
		case e.GetIndex() <= d.from:
			continue
		case e.GetType() != raftpb.EntryNormal:
			// Applying a conf change again would ask raft to apply it
			// again.
			d.aborted = fmt.Errorf("%w: a membership change was applied during the copy", messages.ErrDefragAborted)
		case d.bytes+len(e.GetData()) > maxDefragReplay:
			d.aborted = fmt.Errorf("%w: more than %d bytes were applied during the copy", messages.ErrDefragAborted, maxDefragReplay)
		default:
			d.entries = append(d.entries, e)
			d.bytes += len(e.GetData())
			continue
		}
		d.entries = nil
		d.cancel.Store(true)
		return
	}
}

// abortDefrag drops the copy in progress (a snapshot replaced the state,
// or the actor stops); its requesters hear why once the copier is done.
func (a *Actor) abortDefrag(why error) {
	if d := a.defrag; d != nil && d.aborted == nil {
		d.aborted, d.entries = why, nil
		d.cancel.Store(true)
	}
}

// stopDefrag cancels the copy in progress as the actor stops, and tells
// its requesters.
func (a *Actor) stopDefrag(ctx actor.Context) {
	a.abortDefrag(messages.ErrStopped)
	if d := a.defrag; d != nil {
		for _, w := range d.waiters {
			ctx.Send(w, messages.ErrStopped)
		}
		d.waiters = nil
	}
}

// dbCopied installs the copy, applies to it again what was applied since
// it was taken, and answers the requesters.
func (a *Actor) dbCopied(ctx actor.Context, m dbCopied) {
	d := a.defrag
	a.defrag = nil
	if d == nil {
		_ = os.Remove(m.path)
		return
	}
	res, err := a.installCopy(ctx, d, m)
	if err != nil {
		_ = os.Remove(m.path)
		if errors.Is(err, errInstall) {
			a.fatal(err) // the db is in an unknown state
		} else {
			a.cfg.Logger.Warn("defragmentation did not complete", zap.Error(err))
		}
	} else {
		a.noteState()
		a.cfg.Logger.Info("defragmented the db", zap.Int64("size_before", res.SizeBefore), zap.Int64("size_after", res.SizeAfter),
			zap.Int("entries_replayed", len(d.entries)), zap.Duration("took", time.Since(d.started)))
	}
	for _, w := range d.waiters {
		if err != nil {
			ctx.Send(w, err)
		} else {
			ctx.Send(w, res)
		}
	}
	a.maybeSnapshot(ctx) // held back while the copy was made
}

// errInstall marks a failure after the copy replaced the db: the member
// must stop, as for any failed write of its db.
var errInstall = errors.New("install the defragmented db")

func (a *Actor) installCopy(ctx actor.Context, d *defragRun, m dbCopied) (messages.Defragmented, error) {
	switch {
	case a.failed:
		return messages.Defragmented{}, messages.ErrStopped
	case d.aborted != nil:
		return messages.Defragmented{}, d.aborted
	case m.err != nil:
		return messages.Defragmented{}, fmt.Errorf("copy the db: %w", m.err)
	}
	// What was applied since the copy is committed in the old file too, so
	// that a crash at any point leaves a db the log can bring level: the
	// old one, or the copy at from, with the log's entries after it (no
	// snapshot was taken meanwhile, so the log still holds them).
	a.commit()
	if a.failed {
		return messages.Defragmented{}, messages.ErrStopped
	}
	revision, applied := a.st.Revision(), a.applied
	retired, err := a.st.Install(m.path)
	if err != nil {
		return messages.Defragmented{}, fmt.Errorf("%w: %w", errInstall, err)
	}
	if retired != nil {
		ctx.Send(a.copier, retire{retired})
	}
	if got, _ := a.st.Applied(); got != d.from {
		return messages.Defragmented{}, fmt.Errorf("%w: the copy holds index %d, not %d", errInstall, got, d.from)
	}
	never := func(uint64) bool { return false }
	for _, e := range d.entries {
		// The answers, leases and watch events of these entries went out
		// when they were first applied.
		if _, err := a.ap.Apply(e, never); err != nil {
			return messages.Defragmented{}, fmt.Errorf("%w: apply entry %d again: %w", errInstall, e.GetIndex(), err)
		}
	}
	a.st.TakeEvents()
	if got, _ := a.st.Applied(); got != applied || a.st.Revision() != revision {
		return messages.Defragmented{}, fmt.Errorf("%w: after replay the copy is at index %d revision %d, the db was at %d and %d",
			errInstall, got, a.st.Revision(), applied, revision)
	}
	a.commit()
	if a.failed {
		return messages.Defragmented{}, messages.ErrStopped
	}
	return messages.Defragmented{SizeBefore: d.before, SizeAfter: dbSize(a.st.Backend())}, nil
}

// dbSize is the db's size as its last commit left it (what Status
// reports), not the file's: bbolt grows the file 16 MiB at a time.
func dbSize(be *backend.Backend) int64 {
	size, _, err := be.Size()
	if err != nil {
		return be.FileSize()
	}
	return size
}
