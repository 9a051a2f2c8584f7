package kv

import (
	"errors"
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/messages"
)

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

			c, err := nativeFormat{}.decode(p.Data)
			if err != nil || c.op != opBatch || c.reqID != p.ID {
				t.Fatalf("proposal decodes as %+v, %v; want a batch with the proposal's id %d", c, err, p.ID)
			}
			var keys []string
			if err := decodeBatch(c.value, func(c command) error {
				keys = append(keys, c.key+"="+string(c.value))
				return nil
			}); err != nil {
				t.Fatal(err)
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
		format    Format
		writes    int
		proposals int
	}{
		{"native over the limit", FormatNative, maxBatchCommands + 10, 2},
		{"raftexample", FormatRaftexample, 3, 3},
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

func TestBatchCodec(t *testing.T) {
	cmds := [][]byte{
		command{op: opPut, reqID: 7, key: "a", value: []byte("1")}.encode(),
		command{op: opDelete, reqID: 8, key: "b"}.encode(),
	}
	data := encodeBatch(99, cmds, len(cmds[0])+len(cmds[1]))
	c, err := nativeFormat{}.decode(data)
	if err != nil || c.op != opBatch || c.reqID != 99 {
		t.Fatalf("decode = %+v, %v", c, err)
	}
	var got []string
	if err := decodeBatch(c.value, func(c command) error {
		got = append(got, fmt.Sprintf("%d %d %s", c.op, c.reqID, c.key))
		return nil
	}); err != nil || fmt.Sprint(got) != "[1 7 a 2 8 b]" {
		t.Fatalf("commands %v, %v", got, err)
	}

	bad := []struct {
		name string
		data []byte
	}{
		{"no batch id", []byte{byte(opBatch)}},
		{"length past the end", append(encodeBatch(1, nil, 0), 5, 1)},
		{"non-canonical length", append(encodeBatch(1, nil, 0), 0x81, 0x00)},
		{"bad command inside", append(encodeBatch(1, nil, 0), 1, 9)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c, err := nativeFormat{}.decode(tc.data)
			if err == nil {
				err = decodeBatch(c.value, func(command) error { return nil })
			}
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("err = %v, want ErrBadCommand", err)
			}
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
	if c, err := decodeCommand(p.Data); err != nil || c.key != "held" {
		t.Fatalf("proposed %+v (%v), want the held write", c, err)
	}
}
