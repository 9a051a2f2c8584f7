package kv

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// Proposals are batched the way the raft actor batches Readys: the first
// write after a propose queues a flushProposals marker behind itself, and
// every write that arrives before the marker comes out of the mailbox joins
// one raft entry. Under load a few dozen writes then share one entry, one
// MsgApp per follower, one WAL record and one apply message, where each
// would otherwise pay for all of them; a lone write waits only for the
// marker's trip through the mailbox.
type flushProposals struct{}

// Limits of one batch entry. A batch stays far below raft's MaxSizePerMsg
// (1 MiB), so a MsgApp still carries several, and one failed batch fails at
// most a few hundred writes.
const (
	maxBatchCommands = 256
	maxBatchBytes    = 256 << 10
)

// maxInflightProposals is how many of this member's proposals may wait in
// raft at once before new writes wait here, in the pending batch, for one of
// them to be applied. Under load that is what makes batches: the writes that
// arrive during one commit round trip go out together. A lone write finds
// nothing in flight and is proposed at once. Two keep the log busy while a
// batch commits, instead of leaving it idle between round trips.
const maxInflightProposals = 2

// DefaultInflightBytes bounds the entry data of this member's proposals in
// raft at once; past it, even a full batch waits for one in flight to be
// applied. Without it, 64 clients writing 1 MB values each had their write
// proposed at once, and raft dropped the proposals past its own bound on a
// leader's uncommitted log (actors.maxUncommittedSize, 64 MiB): 13 writes
// of 1,200 in two runs failed with "no leader". Half that bound leaves room
// for the proposals peers forward to a leader.
const DefaultInflightBytes = 32 << 20

// heldWrite is a write that found the pending batch full while the
// proposals in flight held Config.InflightBytes: it joins a batch once
// there is room, in its turn.
type heldWrite struct {
	reqID uint64
	data  []byte
	keys  []string
	all   bool
}

// batch is a proposal in raft: the requests waiting on it (one, for a write
// proposed as itself) and until when it is awaited; its entry data, to be
// proposed again if the leader it went to is replaced (repropose.go), and
// the leadership (term and leader) this actor knew of when it last
// proposed it.
type batch struct {
	reqIDs   []uint64
	deadline time.Time
	data     []byte
	term     uint64
	leader   uint64
	// reproposed says a copy was proposed again: raft refusing one copy
	// then says nothing of the other, which may still be applied.
	reproposed bool
}

// pendingBatch collects the encoded writes waiting for the next propose.
// A batch never holds two writes of one key: they would share the entry's
// revision, and a key's mod_revision would no longer name one write. keys
// are those its writes may touch; all says one of them deletes a range.
type pendingBatch struct {
	cmds   [][]byte
	reqIDs []uint64
	bytes  int
	keys   map[string]struct{}
	all    bool
}

func (p *pendingBatch) add(reqID uint64, cmd []byte, keys []string, all bool) {
	p.cmds = append(p.cmds, cmd)
	p.reqIDs = append(p.reqIDs, reqID)
	p.bytes += len(cmd)
	if p.keys == nil {
		p.keys = make(map[string]struct{})
	}
	for _, k := range keys {
		p.keys[k] = struct{}{}
	}
	p.all = p.all || all
}

// conflicts says whether a write of keys (all: any key) may touch a key a
// pending write touches.
func (p *pendingBatch) conflicts(keys []string, all bool) bool {
	if len(p.cmds) == 0 {
		return false
	}
	if all || p.all {
		return true
	}
	for _, k := range keys {
		if _, ok := p.keys[k]; ok {
			return true
		}
	}
	return false
}

func (p *pendingBatch) full() bool {
	return len(p.cmds) >= maxBatchCommands || p.bytes >= maxBatchBytes
}

func (p *pendingBatch) reset() {
	clear(p.cmds)
	clear(p.keys)
	p.cmds, p.reqIDs, p.bytes, p.all = p.cmds[:0], nil, 0, false
}

// queuePropose adds an encoded write to the pending batch, proposing the
// batch first if the write touches one of its keys.
func (a *Actor) queuePropose(ctx actor.Context, reqID uint64, data []byte, keys []string, all bool) {
	if len(a.held) > 0 || a.pending.full() || (a.pending.conflicts(keys, all) && a.overBudget()) {
		// Held for room in flight (proposePending makes the next batches
		// of these, in order).
		a.held = append(a.held, heldWrite{reqID: reqID, data: data, keys: keys, all: all})
		return
	}
	if a.pending.conflicts(keys, all) {
		a.proposeNow(ctx)
	}
	a.pending.add(reqID, data, keys, all)
	if a.pending.full() {
		a.proposePending(ctx)
		return
	}
	if !a.proposeQueued {
		a.proposeQueued = true
		ctx.Send(ctx.Self(), flushProposals{})
	}
}

// proposePending proposes what is pending, unless enough proposals are in
// flight and the batch has room to grow: one write as itself, several as one
// batch entry if the format has batches, else one by one (a format without
// batches is never held back: holding would only delay).
//
// It goes on with the writes waiting behind a full batch while there is room:
// a batch of them at a time, none past a write of a key the batch holds.
func (a *Actor) proposePending(ctx actor.Context) {
	for {
		if a.codec.Batches() && len(a.inflight) > 0 &&
			(len(a.inflight) >= maxInflightProposals && !a.pending.full() || a.overBudget()) {
			return // proposed when one in flight is applied or given up
		}
		a.proposeNow(ctx)
		if len(a.held) == 0 {
			return
		}
		n := 0
		for ; n < len(a.held) && !a.pending.full(); n++ {
			w := a.held[n]
			if a.pending.conflicts(w.keys, w.all) {
				break
			}
			a.pending.add(w.reqID, w.data, w.keys, w.all)
		}
		clear(a.held[:n])
		a.held = a.held[n:]
		if len(a.held) == 0 {
			a.held = nil
		}
	}
}

// overBudget says the pending batch would take this member's proposals in
// raft past Config.InflightBytes.
func (a *Actor) overBudget() bool {
	n := a.pending.bytes
	for _, b := range a.inflight {
		n += len(b.data)
	}
	return n > a.cfg.InflightBytes
}

// proposeNow proposes what is pending, whatever is in flight.
func (a *Actor) proposeNow(ctx actor.Context) {
	p := &a.pending
	if len(p.cmds) == 0 {
		return
	}
	batching := a.codec.Batches()
	deadline := time.Now().Add(a.cfg.RequestTimeout)
	switch {
	case len(p.cmds) == 1 || !batching:
		for i, data := range p.cmds {
			if batching {
				a.inflight[p.reqIDs[i]] = a.newBatch(p.reqIDs[i:i+1], deadline, data)
			}
			ctx.Send(a.cfg.Raft, messages.Propose{ID: p.reqIDs[i], Data: data})
		}
	default:
		id := a.ids.ID()
		data := apply.EncodeBatch(id, p.cmds, p.bytes)
		a.inflight[id] = a.newBatch(p.reqIDs, deadline, data)
		ctx.Send(a.cfg.Raft, messages.Propose{ID: id, Data: data})
	}
	p.reset()
}

// newBatch records a proposal about to be sent under the leadership this
// actor knows of.
func (a *Actor) newBatch(reqIDs []uint64, deadline time.Time, data []byte) *batch {
	return &batch{reqIDs: reqIDs, deadline: deadline, data: data, term: a.leaderTerm, leader: a.leader}
}

// proposalFailed answers the write, or every write of the batch, that raft
// refused. A proposal proposed again is not answered: raft refused one of
// its copies, and another may be in the log. It stays in flight, to be
// proposed again under the next leader, until it is applied or its
// deadline passes.
func (a *Actor) proposalFailed(ctx actor.Context, m messages.ProposalFailed) {
	defer a.proposePending(ctx)
	ids := []uint64{m.ID} // a format without batches keeps no record
	if b, ok := a.inflight[m.ID]; ok {
		if b.reproposed {
			return
		}
		delete(a.inflight, m.ID)
		ids = b.reqIDs
	}
	for _, id := range ids {
		if w, ok := a.writes.take(id); ok {
			a.m.ProposalsFailed.Inc()
			ctx.Send(w.reply, messages.Result{Err: m.Err})
		}
	}
}
