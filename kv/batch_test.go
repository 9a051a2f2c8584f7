package kv

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// nativeCodec is the native format's codec.
func nativeCodec(t testing.TB) apply.Codec {
	t.Helper()
	codec, err := apply.FormatNative.Codec()
	if err != nil {
		t.Fatal(err)
	}
	return codec
}

// nativeEntryData is c in the native format, unchecked: what a bug, an
// older binary or a peer may have put in the log.
func nativeEntryData(t testing.TB, c apply.Command) []byte {
	t.Helper()
	data, err := nativeCodec(t).Encode(c)
	if err != nil {
		t.Fatalf("encode %v: %v", c.Op, err)
	}
	return data
}

// batchCommands reads the commands of a batch entry's body, as the
// batch codec frames them (apply.EncodeBatch): each command's length, then
// the command.
func batchCommands(t testing.TB, body []byte) []apply.Command {
	t.Helper()
	var cmds []apply.Command
	for len(body) > 0 {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			t.Fatalf("batch framing broken %d bytes from its end", len(body))
		}
		c, err := nativeCodec(t).Decode(body[k : k+int(n)])
		if err != nil {
			t.Fatalf("a command of the batch: %v", err)
		}
		cmds = append(cmds, c)
		body = body[k+int(n):]
	}
	return cmds
}

// Writes queued together become one batch entry; applying it answers each
// write, and raft refusing it fails each.
func TestActorBatchesQueuedWrites(t *testing.T) {
	for _, outcome := range []string{"applied", "refused"} {
		t.Run(outcome, func(t *testing.T) {
			g := &actortest.Gate{}
			f := newFixture(t, fixtureOpts{props: []actor.PropsOption{actor.WithDispatcher(g)}})
			f.sync(t) // started
			g.Close()
			var calls []*call
			for i := range 5 {
				calls = append(calls, f.request(messages.Put{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i))}))
			}
			g.Open()
			p := recv[messages.Propose](t, f.raft.got, "the batch")
			f.raftQuiet(t) // one proposal, not five

			c, err := nativeCodec(t).Decode(p.Data)
			if err != nil || c.Op != apply.OpBatch || c.ReqID != p.ID {
				t.Fatalf("proposal decodes as %+v, %v; want a batch with the proposal's id %d", c, err, p.ID)
			}
			var keys []string
			for _, c := range batchCommands(t, c.Value) {
				keys = append(keys, c.Key+"="+string(c.Value))
			}
			if fmt.Sprint(keys) != "[k0=v0 k1=v1 k2=v2 k3=v3 k4=v4]" {
				t.Fatalf("batch holds %v", keys)
			}
			for _, w := range calls {
				w.pending(t)
			}

			if outcome == "refused" {
				f.system.Root.Send(f.pid, messages.ProposalFailed{ID: p.ID, Err: messages.ErrNoLeader})
				for _, w := range calls {
					w.wantErr(t, messages.ErrNoLeader)
				}
				return
			}
			f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
			for i, w := range calls {
				if r := w.result(t); r.Err != nil || r.Index != 1 {
					t.Fatalf("write %d answered %+v, want success at index 1", i, r)
				}
			}
			f.get(t, "k3", str("v3"), 1)
			if len(f.act.inflight) != 0 {
				t.Fatalf("%d proposals still in flight after apply", len(f.act.inflight))
			}
		})
	}
}

// A batch holds at most maxBatchCommands writes; raftexample's format has no
// batches, so its writes are proposed one by one.
func TestActorBatchLimits(t *testing.T) {
	tests := []struct {
		name      string
		format    apply.Format
		writes    int
		proposals int
	}{
		{"native over the limit", apply.FormatNative, maxBatchCommands + 10, 2},
		{"raftexample", apply.FormatRaftexample, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &actortest.Gate{}
			f := newFixture(t, fixtureOpts{
				props: []actor.PropsOption{actor.WithDispatcher(g)},
				cfg:   func(c *Config) { c.Format = tc.format },
			})
			f.sync(t)
			g.Close()
			for i := range tc.writes {
				f.request(messages.Put{Key: fmt.Sprint("/k", i), Value: []byte("v")})
			}
			g.Open()
			for range tc.proposals {
				recv[messages.Propose](t, f.raft.got, "a proposal")
			}
			f.raftQuiet(t)
		})
	}
}

// With maxInflightProposals of this member's proposals in raft, a new write
// waits; it is proposed once one of them is applied.
func TestActorHoldsWritesWhileProposalsAreInFlight(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var first messages.Propose
	for i := range maxInflightProposals {
		f.request(messages.Put{Key: fmt.Sprint("k", i), Value: []byte("v")})
		p := recv[messages.Propose](t, f.raft.got, "a proposal")
		if i == 0 {
			first = p
		}
	}
	held := f.request(messages.Put{Key: "held", Value: []byte("v")})
	f.raftQuiet(t)
	held.pending(t)

	f.wantDelivery(t, f.apply(normalEntry(1, first.Data)))
	p := recv[messages.Propose](t, f.raft.got, "the held write, once a proposal was applied")
	if c, err := nativeCodec(t).Decode(p.Data); err != nil || c.Key != "held" {
		t.Fatalf("proposed %+v (%v), want the held write", c, err)
	}
}

// Writes that would take this member's proposals in raft past
// Config.InflightBytes wait, whole batches or not, and go in their turn as
// proposals in flight are applied: raft never hears more than its bound on
// uncommitted log, which would make it drop them.
func TestActorHoldsWritesPastTheBytesInFlight(t *testing.T) {
	const inflight = 8 * maxBatchBytes
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.InflightBytes = inflight; c.RequestTimeout = time.Hour }})
	value := make([]byte, maxBatchBytes) // a full batch by itself
	fit := inflight / len(value)
	var proposed []messages.Propose
	for i := range fit - 1 {
		f.request(messages.Put{Key: fmt.Sprint("big", i), Value: value})
		proposed = append(proposed, recv[messages.Propose](t, f.raft.got, "a write within the bytes in flight"))
	}
	var held []*call
	for i := range 3 {
		held = append(held, f.request(messages.Put{Key: fmt.Sprint("held", i), Value: value}))
	}
	f.raftQuiet(t)
	for _, w := range held {
		w.pending(t)
	}
	for i, want := range []string{"held0", "held1", "held2"} {
		f.wantDelivery(t, f.apply(normalEntry(uint64(i+1), proposed[i].Data)))
		p := recv[messages.Propose](t, f.raft.got, "a held write, once a proposal was applied")
		if c, err := nativeCodec(t).Decode(p.Data); err != nil || c.Key != want {
			t.Fatalf("proposed %q (%v), want the held write %s: they go in their turn", c.Key, err, want)
		}
		f.raftQuiet(t)
	}
}
