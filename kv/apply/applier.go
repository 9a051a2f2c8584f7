package apply

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// Config is what an Applier works with.
type Config struct {
	Store  *store.Store
	Format Format
	// Quota bounds the bytes the data may use (store.Cost of each key):
	// a write past it is refused with ErrNoSpace, on every member alike.
	// Zero means none.
	Quota uint64
	// HistoryEvents and HistoryBytes are the bounds of the history the
	// owner compacts the store to after each apply
	// (store.Store.CompactHistory); zero means store.DefaultHistoryEvents
	// and store.DefaultHistoryBytes. A compaction entry compacts to them
	// first, so that it is decided from the log alone: the owner's own
	// compactions fall between applies, which members group differently.
	HistoryEvents, HistoryBytes uint64
	Logger                      *zap.Logger
	Metrics                     *metrics.Node // RefusedEntries is counted; nil makes an unregistered one
}

// Applier turns committed normal entries into store operations and says
// what each command's proposer is to hear. It runs on its owner's goroutine
// (the kv actor's) and keeps nothing between entries but its buffer.
type Applier struct {
	st     *store.Store
	codec  Codec
	format Format
	w      writer
	lg     *zap.Logger
	m      *metrics.Node
	out    []Outcome     // reused: an Applied's outcomes are valid until the next call
	leases []LeaseChange // reused likewise
	// histEvents and histBytes bound the history (Config.HistoryEvents).
	histEvents, histBytes uint64
}

// Outcome is what one command's apply means for the request that proposed
// it: Result if it was applied, Err if it was refused or failed (nothing
// was written). ReqID 0 is a command nobody waits for.
type Outcome struct {
	ReqID  uint64
	Result messages.Result
	Err    error
}

// Applied is what applying one entry did.
type Applied struct {
	// Proposal is the id the entry was proposed under: a batch's id or a
	// lone command's request id (0 if it did not decode that far). Its
	// proposer stops tracking it: it is in the log, applied.
	Proposal uint64
	// BatchRefused is set when the batch's framing was refused: no command
	// of it was applied, and every request the proposer put in it is to
	// hear ErrEntryRefused with this reason.
	BatchRefused error
	// Outcomes are the answers to the entry's commands, valid until the
	// next call.
	Outcomes []Outcome
	// Leases are the grants and revocations the entry applied, in order,
	// valid until the next call: the kv actor's lessor follows them. A
	// grant or revocation that failed (the client's error) is not listed.
	Leases []LeaseChange
}

// New returns the applier of cfg.Store.
func New(cfg Config) (*Applier, error) {
	codec, err := cfg.Format.Codec()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	if cfg.HistoryEvents == 0 {
		cfg.HistoryEvents = store.DefaultHistoryEvents
	}
	if cfg.HistoryBytes == 0 {
		cfg.HistoryBytes = store.DefaultHistoryBytes
	}
	var w writer = storeWriter{cfg.Store}
	if cfg.Quota > 0 {
		w = quotaWriter{writer: w, st: cfg.Store, quota: cfg.Quota}
	}
	return &Applier{st: cfg.Store, codec: codec, format: cfg.Format, w: w, lg: cfg.Logger, m: cfg.Metrics,
		histEvents: cfg.HistoryEvents, histBytes: cfg.HistoryBytes}, nil
}

// writer is what a command does to the store: the store's own operations
// (storeWriter), wrapped by the quota (quotaWriter), as etcd's appliers
// wrap each other.
type writer interface {
	put(key string, value []byte, lease int64, rev uint64) error
	deleteRange(key, end string, rev uint64) (int, error)
	txn(t messages.Txn, rev uint64, results bool) (bool, []messages.OpResult, error)
}

type storeWriter struct{ st *store.Store }

func (w storeWriter) put(key string, value []byte, lease int64, rev uint64) error {
	return w.st.Put(key, value, rev, lease)
}

func (w storeWriter) deleteRange(key, end string, rev uint64) (int, error) {
	return w.st.DeleteRange(key, end, rev)
}

func (w storeWriter) txn(t messages.Txn, rev uint64, results bool) (bool, []messages.OpResult, error) {
	return w.st.Txn(t, rev, results)
}

// Apply applies a normal entry past the store's applied index: decodes its
// commands and applies each at the entry's index, the revision of every
// write it makes. An entry or command that does not decode, or that the db
// cannot hold, is refused (refuse.go), never an error; waiting says whether
// a request waits on this member, which alone reads a transaction's results.
// An error is the db's, and the owner stops.
func (ap *Applier) Apply(e *raftpb.Entry, waiting func(reqID uint64) bool) (Applied, error) {
	ap.out, ap.leases = ap.out[:0], ap.leases[:0]
	idx := e.GetIndex()
	ap.st.SetApplied(idx, e.GetTerm(), nil)
	if len(e.GetData()) == 0 {
		return Applied{}, nil // a new leader's empty entry
	}
	res, err := ap.each(e, func(c Command) error {
		if c.Term != 0 && c.Term != e.GetTerm() {
			// A lessor's decision from a term it no longer leads (lease.go).
			ap.lg.Debug("skipped a lease command of another term", zap.Uint64("index", idx), zap.Uint64("term", c.Term), zap.Uint64("entry_term", e.GetTerm()))
			return nil
		}
		return ap.command(c, idx, waiting)
	})
	res.Outcomes = ap.out
	if len(ap.leases) > 0 {
		res.Leases = ap.leases
	}
	return res, err
}

// Replay handles a normal entry the store holds already (it came with a
// snapshot's db, ahead of the snapshot raft restored): nothing is written
// again, but a client waiting for one of its writes hears it is applied
// where the db proves the outcome: a publication and a lease checkpoint
// always apply, a put did if its key's last write is that entry, a grant
// if the lease the state holds was granted by that entry. A put the quota
// refused or whose lease was missing, one overwritten since, a delete (how
// many keys it removed), a transaction (which branch ran), a grant of an
// id held already, or one revoked since, a revocation (the lease may
// have been absent) and a compaction (it may have been refused as
// compacted already) are not proven: the client times out, told the
// outcome is unknown, as for any write whose answer was lost. Applied
// lists no lease changes: the state holds them already, and a member that
// becomes leader reads its leases from the state.
func (ap *Applier) Replay(e *raftpb.Entry) (Applied, error) {
	ap.out = ap.out[:0]
	if len(e.GetData()) == 0 {
		return Applied{}, nil
	}
	idx := e.GetIndex()
	res, err := ap.each(e, func(c Command) error {
		switch c.Op {
		case OpTxn, OpDelete, OpLeaseRevoke, OpCompact:
			return nil
		case OpLeaseGrant:
			id, ttl, _, _ := decodeLeaseOp(c) // its errors were refused at decode
			l, ok, err := ap.st.Lease(id)
			if err != nil {
				return err
			}
			if ok && l.Granted == idx && l.TTL == ttl {
				ap.answer(c.ReqID, ap.result(messages.Result{Lease: &messages.Lease{ID: id, TTL: ttl, Remaining: ttl}}), nil)
			}
			return nil
		case OpPut:
			if err := checkStored(c); err != nil {
				ap.answer(c.ReqID, messages.Result{}, fmt.Errorf("%w: %w", messages.ErrEntryRefused, err))
				return nil
			}
			kv, ok, err := ap.st.Get(c.Key)
			if err != nil {
				return err
			}
			if ok && kv.ModRevision == idx {
				ap.answer(c.ReqID, messages.Result{Index: idx, Revision: idx}, nil)
			}
			return nil
		}
		ap.answer(c.ReqID, ap.result(messages.Result{}), nil)
		return nil
	})
	res.Outcomes = ap.out
	return res, err
}

// each decodes a normal entry's commands and hands each to apply; an entry
// or command that does not decode is refused. The errors apply returns are
// the db's.
func (ap *Applier) each(e *raftpb.Entry, apply func(Command) error) (Applied, error) {
	idx := e.GetIndex()
	c, err := ap.codec.Decode(e.GetData())
	if err != nil {
		var id uint64
		if ap.format == FormatNative {
			id = peekReqID(e.GetData())
		}
		ap.refuse(idx, id, err)
		return Applied{Proposal: id}, nil
	}
	if c.Op != OpBatch {
		return Applied{Proposal: c.ReqID}, apply(c)
	}
	cmds, err := splitBatch(c.Value)
	if err != nil {
		ap.refuse(idx, 0, err)
		return Applied{Proposal: c.ReqID, BatchRefused: fmt.Errorf("%w: %w", messages.ErrEntryRefused, err)}, nil
	}
	batch := Applied{Proposal: c.ReqID}
	for _, data := range cmds {
		c, err := decodeCommand(data)
		if err != nil {
			ap.refuse(idx, peekReqID(data), fmt.Errorf("batch: %w", err))
			continue
		}
		if err := apply(c); err != nil {
			return batch, err
		}
	}
	return batch, nil
}

// command applies one client command of the entry at index rev. A command
// the db cannot hold is refused, and a write past the quota is the
// client's failure; any other error is the db's.
func (ap *Applier) command(c Command, rev uint64, waiting func(uint64) bool) error {
	if skip, err := ap.duplicate(c.ReqID); skip || err != nil {
		return err // applied before, or too old to tell (store's dedup.go); or the db failed
	}
	var res messages.Result
	var err error
	switch c.Op {
	case OpTxn:
		t, terr := decodeTxn(c.Value)
		if terr != nil {
			ap.refuse(rev, c.ReqID, terr)
			return nil
		}
		res.Succeeded, res.Results, err = ap.w.txn(t, rev, waiting(c.ReqID))
	case OpPut, OpDelete:
		if cerr := checkStored(c); cerr != nil {
			ap.refuse(rev, c.ReqID, cerr)
			return nil
		}
		if c.Op == OpPut {
			err = ap.w.put(c.Key, c.Value, c.Lease, rev)
		} else {
			var n int
			n, err = ap.w.deleteRange(c.Key, "", rev)
			res.Results = []messages.OpResult{{Deleted: n}}
		}
	case OpAttrs:
		id, urls, aerr := decodeAttrs(c)
		if aerr == nil { // its errors were refused at decode
			err = ap.st.SetClients(id, urls)
		}
	case OpLeaseGrant, OpLeaseRevoke, OpLeaseCheckpoint:
		id, n, _, lerr := decodeLeaseOp(c)
		if lerr != nil { // decodeCommand refused it already: never here
			ap.refuse(rev, c.ReqID, lerr)
			return nil
		}
		res, err = ap.lease(c.Op, id, n, rev)
	case OpCompact:
		crev, cerr := decodeCompact(c)
		if cerr != nil { // decodeCommand refused it already: never here
			ap.refuse(rev, c.ReqID, cerr)
			return nil
		}
		err = ap.compact(crev)
	}
	switch {
	case errors.Is(err, ErrNoSpace), errors.Is(err, messages.ErrLeaseNotFound), errors.Is(err, messages.ErrLeaseExists),
		errors.Is(err, messages.ErrNotFound), errors.Is(err, messages.ErrCompacted), errors.Is(err, messages.ErrFutureRevision):
		// The client's failure, decided by the state alone, so alike on
		// every member: nothing was written.
		ap.answer(c.ReqID, messages.Result{}, err)
		return nil
	case err != nil:
		return err
	}
	ap.answer(c.ReqID, ap.result(res), nil)
	return nil
}

// compact compacts the history through rev (compact.go). The owner's
// compactions by size fall between applies, and members group entries
// into applies differently: compacting by size first makes the compacted
// revision here what it is after this entry's predecessor on every member
// alike (dropping by size is monotone: whenever it runs, what it keeps
// after a given entry is the same), so that whether rev is compacted
// already is decided alike too.
func (ap *Applier) compact(rev uint64) error {
	if err := ap.st.CompactHistory(ap.histEvents, ap.histBytes); err != nil {
		return err
	}
	return ap.st.Compact(rev)
}

// lease applies a lease operation on lease id at index rev (n is a
// grant's TTL, a checkpoint's remaining TTL) and lists a grant or
// revocation for the lessor.
func (ap *Applier) lease(op Op, id, n int64, rev uint64) (messages.Result, error) {
	switch op {
	case OpLeaseGrant:
		if err := ap.st.GrantLease(id, n); err != nil {
			return messages.Result{}, err
		}
		ap.leases = append(ap.leases, LeaseChange{ID: id, TTL: n})
		return messages.Result{Lease: &messages.Lease{ID: id, TTL: n, Remaining: n}}, nil
	case OpLeaseRevoke:
		if _, err := ap.st.RevokeLease(id, rev); err != nil {
			return messages.Result{}, err
		}
		ap.leases = append(ap.leases, LeaseChange{ID: id, Revoked: true})
		return messages.Result{}, nil
	}
	return messages.Result{}, ap.st.CheckpointLease(id, n)
}

// duplicate says whether the command of request id reqID must be skipped,
// having been applied already (the store's dedup records), and records it
// otherwise. Only the native format keeps the records: see store's dedup.go.
func (ap *Applier) duplicate(reqID uint64) (bool, error) {
	if ap.format != FormatNative || reqID == 0 {
		return false, nil
	}
	first, err := ap.st.FirstApply(reqID)
	if err != nil {
		return false, fmt.Errorf("record request id %d: %w", reqID, err)
	}
	if !first {
		ap.lg.Debug("skipped a command applied before", zap.Uint64("request_id", reqID))
	}
	return !first, nil
}

// result completes an applied command's answer with the applied index and
// the store's revision.
func (ap *Applier) result(res messages.Result) messages.Result {
	res.Index, _ = ap.st.Applied()
	res.Revision = ap.st.Revision()
	return res
}

func (ap *Applier) answer(reqID uint64, res messages.Result, err error) {
	if reqID == 0 {
		return
	}
	if err != nil {
		res = messages.Result{Err: err}
		res.Index, _ = ap.st.Applied()
	}
	ap.out = append(ap.out, Outcome{ReqID: reqID, Result: res, Err: err})
}

// refuse records that the command of request id reqID in the entry at
// index was refused when applied, and answers its client. reqID 0 is a
// command whose id did not decode.
func (ap *Applier) refuse(index, reqID uint64, reason error) {
	ap.m.RefusedEntries.Inc()
	// The reason names sizes and positions, never a key or value.
	ap.lg.Warn("refused a committed entry: nothing was written",
		zap.Uint64("index", index), zap.String("reason", redact.Text(reason.Error(), maxReasonBytes)))
	ap.answer(reqID, messages.Result{}, fmt.Errorf("%w: %w", messages.ErrEntryRefused, reason))
}

// Refuse records a committed entry the state machine cannot take as a
// whole (a conf change that does not unmarshal, an entry of a type raft
// does not know) as refused, for the owner, which moves the applied index
// past it.
func (ap *Applier) Refuse(index uint64, reason error) {
	ap.refuse(index, 0, fmt.Errorf("%w: %w", ErrBadCommand, reason))
}

// ValidEntry checks the data of a normal entry as this member's format
// would decode it when applying: the raft actor refuses a peer's proposal
// that would stop every member applying it.
func (ap *Applier) ValidEntry(data []byte) error { return ValidEntry(ap.codec, data) }

// ValidEntry checks data as codec decodes it when applying, transaction
// bodies included.
func ValidEntry(codec Codec, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	c, err := codec.Decode(data)
	if err != nil {
		return err
	}
	// A transaction's body is decoded only when it is applied: check it
	// here too.
	check := func(c Command) error {
		if c.Op == OpTxn {
			_, err := decodeTxn(c.Value)
			return err
		}
		return nil
	}
	if c.Op == OpBatch {
		return decodeBatch(c.Value, check)
	}
	return check(c)
}
