package kv

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// write makes a client request, applies its proposal alone at idx and
// returns the answer.
func (f *fixture) write(t *testing.T, idx uint64, req any) messages.Result {
	t.Helper()
	w := f.request(req)
	p := recv[messages.Propose](t, f.raft.got, fmt.Sprintf("Propose of %T", req))
	f.wantDelivery(t, f.apply(normalEntry(idx, p.Data)))
	return w.result(t)
}

// revision is the actor's store revision.
func (f *fixture) revision(t *testing.T) uint64 {
	t.Helper()
	var rev uint64
	f.inspect(t, func(a *Actor) { rev = a.st.Revision() })
	return rev
}

// txnEntry is the entry at idx of txn as the kv actor proposes it, under
// reqID (uncheckedTxnEntry, in refuse_test.go, makes one the API refuses).
func txnEntry(t testing.TB, idx, reqID uint64, txn messages.Txn) *raftpb.Entry {
	t.Helper()
	c, _, _, err := apply.ProposeTxn(txn)
	if err != nil {
		t.Fatalf("ProposeTxn: %v", err)
	}
	c.ReqID = reqID
	return normalEntry(idx, encodeNative(c))
}

// Revisions through the actor: a key's counters across put, put, delete and
// put; the store's revision moving only on entries that change a key; the
// Index and Revision of every answer.
func TestActorRevisions(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	getKey := func(key string) messages.Result {
		t.Helper()
		r := f.request(messages.Get{Key: key, Serializable: true}).result(t)
		if r.Err != nil {
			t.Fatalf("Get %q: %v", key, r.Err)
		}
		return r
	}
	type want struct {
		index, rev uint64
		k          messages.KV // the key k after the entry (zero: absent)
	}
	kv := func(v string, c, m, ver uint64) messages.KV {
		return messages.KV{Key: "k", Value: []byte(v), CreateRevision: c, ModRevision: m, Version: ver}
	}
	steps := []struct {
		name  string
		do    func(idx uint64) messages.Result // nil: an entry no client waits for
		entry func(idx uint64) *raftpb.Entry
		want  want
		check func(r messages.Result)
	}{
		{name: "put", do: func(idx uint64) messages.Result { return f.write(t, idx, messages.Put{Key: "k", Value: []byte("v1")}) },
			want: want{1, 1, kv("v1", 1, 1, 1)}},
		{name: "put again", do: func(idx uint64) messages.Result { return f.write(t, idx, messages.Put{Key: "k", Value: []byte("v2")}) },
			want: want{2, 2, kv("v2", 1, 2, 2)}},
		{name: "conf change", entry: func(idx uint64) *raftpb.Entry { return confChangeEntry(t, idx, addNode(1, "http://a:2380", 0)) },
			want: want{3, 2, kv("v2", 1, 2, 2)}},
		{name: "publication of client URLs", entry: func(idx uint64) *raftpb.Entry {
			return normalEntry(idx, encodeNative(apply.ProposeAttrs(1, []string{"http://a:2379"})))
		}, want: want{4, 2, kv("v2", 1, 2, 2)}},
		{name: "delete of an absent key", do: func(idx uint64) messages.Result { return f.write(t, idx, messages.Delete{Key: "absent"}) },
			want: want{5, 2, kv("v2", 1, 2, 2)},
			check: func(r messages.Result) {
				if len(r.Results) != 1 || r.Results[0].Deleted != 0 {
					t.Fatalf("delete of an absent key answered %+v, want deleted 0", r.Results)
				}
			}},
		{name: "transaction whose compare fails, without writes", do: func(idx uint64) messages.Result {
			return f.write(t, idx, messages.Txn{
				Compares: []messages.Compare{kvtest.CmpNum("k", messages.CompareVersion, messages.CompareEqual, 5)},
				Success:  []messages.TxnOp{kvtest.TxnPut("k", "never")},
				Failure:  []messages.TxnOp{kvtest.TxnGet("k")},
			})
		}, want: want{6, 2, kv("v2", 1, 2, 2)},
			check: func(r messages.Result) {
				if r.Succeeded || len(r.Results) != 1 || !reflect.DeepEqual(r.Results[0].KVs, []messages.KV{kv("v2", 1, 2, 2)}) {
					t.Fatalf("failed transaction answered %+v", r)
				}
			}},
		{name: "a new leader's empty entry", entry: func(idx uint64) *raftpb.Entry { return normalEntry(idx, nil) },
			want: want{7, 2, kv("v2", 1, 2, 2)}},
		{name: "delete", do: func(idx uint64) messages.Result { return f.write(t, idx, messages.Delete{Key: "k"}) },
			want: want{8, 8, messages.KV{}},
			check: func(r messages.Result) {
				if len(r.Results) != 1 || r.Results[0].Deleted != 1 {
					t.Fatalf("delete answered %+v, want deleted 1", r.Results)
				}
			}},
		{name: "put after the delete", do: func(idx uint64) messages.Result { return f.write(t, idx, messages.Put{Key: "k", Value: []byte("v3")}) },
			want: want{9, 9, kv("v3", 9, 9, 1)}},
		{name: "transaction that writes", do: func(idx uint64) messages.Result {
			return f.write(t, idx, messages.Txn{
				Compares: []messages.Compare{kvtest.CmpNum("k", messages.CompareModRevision, messages.CompareEqual, 9)},
				Success:  []messages.TxnOp{kvtest.TxnPut("k", "v4"), kvtest.TxnGet("k"), kvtest.TxnPut("j", "1")},
			})
		}, want: want{10, 10, kv("v4", 9, 10, 2)},
			check: func(r messages.Result) {
				if !r.Succeeded || len(r.Results) != 3 || !reflect.DeepEqual(r.Results[1].KVs, []messages.KV{kv("v4", 9, 10, 2)}) {
					t.Fatalf("transaction answered %+v", r)
				}
			}},
	}
	for i, s := range steps {
		idx := uint64(i + 1)
		if s.do != nil {
			r := s.do(idx)
			if r.Err != nil || r.Index != s.want.index || r.Revision != s.want.rev {
				t.Fatalf("%s: answered %+v, want index %d revision %d", s.name, r, s.want.index, s.want.rev)
			}
			if s.check != nil {
				s.check(r)
			}
		} else {
			f.wantDelivery(t, f.apply(s.entry(idx)))
			if s.name == "conf change" {
				recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
			}
		}
		if rev := f.revision(t); rev != s.want.rev {
			t.Fatalf("%s: store revision %d, want %d", s.name, rev, s.want.rev)
		}
		r := getKey("k")
		if r.Index != idx || r.Revision != s.want.rev || r.Found != (s.want.k.Version != 0) || !reflect.DeepEqual(r.KV, s.want.k) || string(r.Value) != string(s.want.k.Value) {
			t.Fatalf("%s: Get k = %+v, want index %d revision %d, %+v", s.name, r, idx, s.want.rev, s.want.k)
		}
	}
	f.noFatal(t)

	// Range reads through the actor: now, at a past revision, in the future.
	res := f.request(messages.Range{Start: "a", End: store.RangeEndAll, Serializable: true}).result(t)
	if res.Err != nil || res.Revision != 10 || res.Index != 10 || len(res.Results) != 1 || fmtKVs(res.Results[0].KVs) != `["j"="1" c10 m10 v1]["k"="v4" c9 m10 v2]` {
		t.Fatalf("range now: %+v", res)
	}
	for _, c := range []struct {
		rev  uint64
		want string
	}{
		{9, `["k"="v3" c9 m9 v1]`},
		{8, ""},
		{5, `["k"="v2" c1 m2 v2]`},
		{1, `["k"="v1" c1 m1 v1]`},
	} {
		res := f.request(messages.Range{Start: "a", End: store.RangeEndAll, Revision: c.rev, Serializable: true}).result(t)
		if res.Err != nil || res.Revision != c.rev || fmtKVs(res.Results[0].KVs) != c.want {
			t.Fatalf("range at %d: %+v, want %s", c.rev, res, c.want)
		}
	}
	f.request(messages.Range{Start: "a", End: store.RangeEndAll, Revision: 11, Serializable: true}).wantErr(t, messages.ErrFutureRevision)
	f.request(messages.Range{End: "b", Serializable: true}).wantErr(t, messages.ErrInvalidTxn)
	// A linearizable range waits for its read index.
	lin := f.request(messages.Range{Start: "k"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	lin.pending(t)
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 10})
	if r := lin.result(t); r.Err != nil || r.Revision != 10 || fmtKVs(r.Results[0].KVs) != `["k"="v4" c9 m10 v2]` {
		t.Fatalf("linearizable range: %+v", r)
	}
	f.noFatal(t)
}

// A transaction is checked before it is proposed; applied, its writes are
// made on every member, and its client is answered with the branch's
// results. One past the quota is answered ErrNoSpace and writes nothing.
func TestActorTxn(t *testing.T) {
	big := strings.Repeat("v", 40)
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.Quota = store.Cost("a", []byte(big)) + store.Cost("b", []byte(big)) }})

	f.request(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnPut("k", "2")}}).wantErr(t, messages.ErrInvalidTxn)
	f.request(messages.Txn{Compares: []messages.Compare{{Key: "k"}}}).wantErr(t, messages.ErrInvalidTxn)
	f.raftQuiet(t) // nothing proposed

	// Another member's transaction: no client waits here, the writes are
	// made all the same.
	f.wantDelivery(t, f.apply(txnEntry(t, 1, 12345, messages.Txn{
		Compares: []messages.Compare{kvtest.CmpNum("a", messages.CompareCreateRevision, messages.CompareEqual, 0)},
		Success:  []messages.TxnOp{kvtest.TxnPut("a", big), kvtest.TxnGet("a")},
	})))
	f.get(t, "a", str(big), 1)

	r := f.write(t, 2, messages.Txn{
		Compares: []messages.Compare{kvtest.CmpNum("a", messages.CompareCreateRevision, messages.CompareEqual, 0)},
		Success:  []messages.TxnOp{kvtest.TxnPut("a", "again")},
		Failure:  []messages.TxnOp{kvtest.TxnPut("b", big), kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, KeysOnly: true})},
	})
	if r.Err != nil || r.Succeeded || r.Revision != 2 || len(r.Results) != 2 || fmtKVs(r.Results[1].KVs) != `["a"="" c1 m1 v1]["b"="" c2 m2 v1]` {
		t.Fatalf("transaction answered %+v", r)
	}

	// Past the quota: refused whole.
	r = f.write(t, 3, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("c", "x"), kvtest.TxnPut("a", "smaller")}})
	if !errors.Is(r.Err, apply.ErrNoSpace) || r.Index != 3 {
		t.Fatalf("transaction past the quota answered %+v, want ErrNoSpace at 3", r)
	}
	if rev := f.revision(t); rev != 2 {
		t.Fatalf("a refused transaction moved the revision to %d", rev)
	}
	f.get(t, "a", str(big), 3)
	// A delete-only transaction is never refused.
	if r := f.write(t, 4, messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", store.RangeEndAll)}}); r.Err != nil || r.Revision != 4 || r.Results[0].Deleted != 2 {
		t.Fatalf("delete-only transaction answered %+v", r)
	}
	f.noFatal(t)
}

// describeProposal lists the commands of a proposal: "put k=v", "del k",
// "txn" for each, in order.
func describeProposal(t *testing.T, p messages.Propose) []string {
	t.Helper()
	c, err := decodeNative(p.Data)
	if err != nil {
		t.Fatalf("proposal does not decode: %v", err)
	}
	desc := func(c apply.Command) string {
		switch c.Op {
		case apply.OpPut:
			return "put " + c.Key + "=" + string(c.Value)
		case apply.OpDelete:
			return "del " + c.Key
		case apply.OpTxn:
			return "txn"
		}
		return fmt.Sprint("op ", c.Op)
	}
	if c.Op != apply.OpBatch {
		return []string{desc(c)}
	}
	var out []string
	for _, c := range batchCommands(t, c.Value) {
		out = append(out, desc(c))
	}
	return out
}

// The batcher never puts two writes of one key into one entry, so that a
// key's mod_revision names one write: writes queued together are split
// where a key repeats; a transaction that deletes a range, which may hold
// any key, goes alone.
func TestActorBatchNeverWritesAKeyTwice(t *testing.T) {
	rangeDelete := messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("b", "d")}}
	cases := []struct {
		name string
		reqs []any
		// proposals: the batches proposed at once; then, held by the
		// in-flight limit until the first is applied, the rest.
		proposals [][]string
		held      [][]string
	}{
		{"different keys share an entry",
			[]any{messages.Put{Key: "a", Value: []byte("1")}, messages.Put{Key: "b", Value: []byte("1")}, messages.Delete{Key: "c"}},
			[][]string{{"put a=1", "put b=1", "del c"}}, nil},
		{"two puts of one key",
			[]any{messages.Put{Key: "k", Value: []byte("1")}, messages.Put{Key: "k", Value: []byte("2")}, messages.Put{Key: "j", Value: []byte("1")}},
			[][]string{{"put k=1"}, {"put k=2", "put j=1"}}, nil},
		{"delete then put",
			[]any{messages.Delete{Key: "k"}, messages.Put{Key: "k", Value: []byte("1")}},
			[][]string{{"del k"}, {"put k=1"}}, nil},
		{"a transaction that may write the key in either branch",
			[]any{messages.Txn{Failure: []messages.TxnOp{kvtest.TxnPut("k", "t")}}, messages.Put{Key: "k", Value: []byte("1")}},
			[][]string{{"txn"}, {"put k=1"}}, nil},
		{"transactions that write go alone: the keys they create get create revisions of their own",
			[]any{messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("lock/a", "1")}}, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("lock/b", "1")}}},
			[][]string{{"txn"}, {"txn"}}, nil},
		{"a transaction that only reads the key",
			[]any{messages.Put{Key: "k", Value: []byte("1")}, messages.Txn{Compares: []messages.Compare{kvtest.CmpValue("k", messages.CompareEqual, "1")}, Success: []messages.TxnOp{kvtest.TxnGet("k")}}},
			[][]string{{"put k=1", "txn"}}, nil},
		{"a range delete goes alone",
			[]any{messages.Put{Key: "a", Value: []byte("1")}, rangeDelete, messages.Put{Key: "e", Value: []byte("1")}},
			[][]string{{"put a=1"}, {"txn"}}, [][]string{{"put e=1"}}},
		{"a range delete first",
			[]any{rangeDelete, messages.Put{Key: "x", Value: []byte("1")}, messages.Put{Key: "y", Value: []byte("1")}},
			[][]string{{"txn"}, {"put x=1", "put y=1"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &actortest.Gate{}
			f := newFixture(t, fixtureOpts{props: []actor.PropsOption{actor.WithDispatcher(g)}})
			f.sync(t)
			g.Close()
			var calls []*call
			for _, req := range c.reqs {
				calls = append(calls, f.request(req))
			}
			g.Open()
			var props []messages.Propose
			for i, want := range c.proposals {
				p := recv[messages.Propose](t, f.raft.got, fmt.Sprint("proposal ", i))
				if got := describeProposal(t, p); !slices.Equal(got, want) {
					t.Fatalf("proposal %d holds %q, want %q", i, got, want)
				}
				props = append(props, p)
			}
			f.raftQuiet(t)
			// Applied, each proposal is one revision.
			for i := 0; i < len(props); i++ {
				f.wantDelivery(t, f.apply(normalEntry(uint64(i+1), props[i].Data)))
				if i == 0 {
					for j, want := range c.held {
						p := recv[messages.Propose](t, f.raft.got, fmt.Sprint("held proposal ", j))
						if got := describeProposal(t, p); !slices.Equal(got, want) {
							t.Fatalf("held proposal %d holds %q, want %q", j, got, want)
						}
						props = append(props, p)
					}
				}
			}
			for i, w := range calls {
				if r := w.result(t); r.Err != nil {
					t.Fatalf("request %d answered %+v", i, r)
				}
			}
			f.raftQuiet(t)
			f.noFatal(t)
		})
	}
}

// A conflict flushes the pending batch at once, whatever is in flight: the
// write it holds must go out before the one that conflicts with it, and
// holding it would hold both.
func TestActorConflictFlushIgnoresInflightLimit(t *testing.T) {
	g := &actortest.Gate{}
	f := newFixture(t, fixtureOpts{props: []actor.PropsOption{actor.WithDispatcher(g)}})
	var inflight []*raftpb.Entry
	for i := range maxInflightProposals {
		f.request(messages.Put{Key: fmt.Sprint("x", i), Value: []byte("v")})
		p := recv[messages.Propose](t, f.raft.got, "a proposal")
		inflight = append(inflight, normalEntry(uint64(i+1), p.Data))
	}
	g.Close()
	one := f.request(messages.Put{Key: "k", Value: []byte("1")})
	two := f.request(messages.Put{Key: "k", Value: []byte("2")})
	g.Open()
	p := recv[messages.Propose](t, f.raft.got, "the write flushed by the conflict")
	if got := describeProposal(t, p); !slices.Equal(got, []string{"put k=1"}) {
		t.Fatalf("proposed %q, want put k=1", got)
	}
	f.raftQuiet(t) // k=2 waits for room in flight
	two.pending(t)

	// Three in flight: room comes once two are applied.
	f.wantDelivery(t, f.apply(inflight...))
	p2 := recv[messages.Propose](t, f.raft.got, "the held write")
	if got := describeProposal(t, p2); !slices.Equal(got, []string{"put k=2"}) {
		t.Fatalf("proposed %q, want put k=2", got)
	}
	f.wantDelivery(t, f.apply(normalEntry(3, p.Data), normalEntry(4, p2.Data)))
	if r := one.result(t); r.Err != nil || r.Revision != 3 {
		t.Fatalf("k=1 answered %+v", r)
	}
	if r := two.result(t); r.Err != nil || r.Revision != 4 {
		t.Fatalf("k=2 answered %+v", r)
	}
}

// setQuota has the actor apply from now on under quota (0: none), as if
// it had been configured so: the applier holds the quota, and keeps
// nothing between entries, so a new one takes over where it stands.
func (f *fixture) setQuota(t *testing.T, quota uint64) {
	t.Helper()
	var err error
	f.inspect(t, func(a *Actor) {
		var ap *apply.Applier
		ap, err = apply.New(apply.Config{Store: a.st, Format: a.cfg.Format, Quota: quota, Logger: a.cfg.Logger, Metrics: a.m})
		if err == nil {
			a.cfg.Quota, a.ap = quota, ap
		}
	})
	if err != nil {
		t.Fatalf("an applier with quota %d: %v", quota, err)
	}
}

// watchProbe wires a probe in as the actor's watch hub.
func (f *fixture) watchProbe(t *testing.T) *probe {
	t.Helper()
	p := spawnProbe(f.system, nil)
	f.inspect(t, func(a *Actor) { a.cfg.Watch = p.pid })
	return p
}

func watchEvents(t *testing.T, p *probe, what string) messages.WatchEvents {
	t.Helper()
	return recv[messages.WatchEvents](t, p.got, what)
}

// The watch hub hears, after each apply, the changes in revision order
// with the store's revision after them, before the commit that holds them;
// entries that change nothing send nothing.
func TestActorWatchEvents(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.watchProbe(t)

	batch := apply.EncodeBatch(1, [][]byte{
		encodeNative(apply.Command{Op: apply.OpPut, Key: "b", Value: []byte("B")}),
		encodeNative(apply.Command{Op: apply.OpPut, Key: "c", Value: []byte("C")}),
		encodeNative(apply.Command{Op: apply.OpDelete, Key: "a"}),
		encodeNative(apply.Command{Op: apply.OpDelete, Key: "absent"}),
	}, 0)
	f.wantDelivery(t, f.apply(putEntry(1, "a", "A"), normalEntry(2, batch), normalEntry(3, encodeNative(apply.Command{Op: apply.OpDelete, Key: "absent"}))))
	ev := watchEvents(t, w, "the first apply")
	if got := kvtest.EventNames(ev.Events); got != "[a@1 b@2 c@2 -a@2]" || ev.Revision != 2 {
		t.Fatalf("WatchEvents %s at %d, want [a@1 b@2 c@2 -a@2] at 2", got, ev.Revision)
	}
	if e := ev.Events[1].KV; string(e.Value) != "B" || e.CreateRevision != 2 || e.Version != 1 {
		t.Fatalf("the put of b: %+v", e)
	}
	f.commitNow(t) // or the commit timer did it already: one commit either way
	if c := recv[messages.WatchCommitted](t, w.got, "WatchCommitted"); c.Revision != 2 {
		t.Fatalf("WatchCommitted %+v, want 2", c)
	}
	f.quiet(t, w, "the watch hub")

	// Nothing changes: a conf change, a failed transaction, a delete of an
	// absent key, a put past the quota. Only the commit is heard.
	f.setQuota(t, 1)
	f.wantDelivery(t, f.apply(
		confChangeEntry(t, 4, addNode(1, "http://a:2380", 0)),
		txnEntry(t, 5, 0, messages.Txn{Compares: []messages.Compare{kvtest.CmpNum("b", messages.CompareVersion, messages.CompareEqual, 9)}, Success: []messages.TxnOp{kvtest.TxnPut("b", "x")}}),
		normalEntry(6, encodeNative(apply.Command{Op: apply.OpDelete, Key: "a"})),
		putEntry(7, "new", "too big"),
	))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	f.commitNow(t)
	// Two commits: the conf change's, at once (rebuild.go), and the one
	// asked for.
	for range 2 {
		if c := recv[messages.WatchCommitted](t, w.got, "WatchCommitted"); c.Revision != 2 {
			t.Fatalf("WatchCommitted %+v, want 2", c)
		}
	}
	f.quiet(t, w, "the watch hub")
	f.setQuota(t, 0)

	// Many applies, commits by the timer or asked for: events come in
	// revision order, and every commit is heard after the events it holds.
	var got []messages.Event
	last := uint64(2)
	for idx := uint64(8); idx <= 40; idx++ {
		f.wantDelivery(t, f.apply(putEntry(idx, fmt.Sprint("k", idx%5), fmt.Sprint(idx))))
		if idx%7 == 0 {
			f.commitNow(t)
		}
	}
	f.commitNow(t)
	for done := false; !done; {
		switch m := recv[any](t, w.got, "watch messages").(type) {
		case messages.WatchEvents:
			for _, e := range m.Events {
				if e.Revision() <= last {
					t.Fatalf("event at %d after one at %d", e.Revision(), last)
				}
				last = e.Revision()
			}
			if m.Revision != last {
				t.Fatalf("WatchEvents revision %d, its last event at %d", m.Revision, last)
			}
			got = append(got, m.Events...)
		case messages.WatchCommitted:
			if m.Revision > last {
				t.Fatalf("WatchCommitted at %d heard before the events after %d", m.Revision, last)
			}
			done = m.Revision == 40
		default:
			t.Fatalf("the watch hub got %T", m)
		}
	}
	if len(got) != 33 {
		t.Fatalf("%d events, want 33", len(got))
	}
	f.quiet(t, w, "the watch hub")

	// What was committed is in the history, as a stream catching up reads it.
	evs, through, err := kvtest.ReadEventsAsync(f.state, 8, 1000)
	if err != nil || len(evs) != 33 || through != 40 {
		t.Fatalf("ReadEvents(8) = %d events through %d, %v", len(evs), through, err)
	}
	f.noFatal(t)
}

// The history kept follows Config.HistoryEvents, compacted after each
// apply, whole revisions at a time.
func TestActorCompactsHistory(t *testing.T) {
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.HistoryEvents = 3 }})
	batch := apply.EncodeBatch(1, [][]byte{
		encodeNative(apply.Command{Op: apply.OpPut, Key: "b", Value: []byte("B")}),
		encodeNative(apply.Command{Op: apply.OpPut, Key: "c", Value: []byte("C")}),
	}, 0)
	f.wantDelivery(t, f.apply(putEntry(1, "a", "A"), normalEntry(2, batch)))
	// The history's extent as the store holds it, committed or not.
	type extent struct{ compacted, histEvents uint64 }
	var m extent
	read := func(a *Actor) { m = extent{a.st.Compacted(), a.st.HistoryEvents()} }
	f.inspect(t, read)
	if m.compacted != 0 || m.histEvents != 3 {
		t.Fatalf("within the bound: compacted %d, %d events", m.compacted, m.histEvents)
	}
	f.wantDelivery(t, f.apply(putEntry(3, "d", "D")))
	f.inspect(t, read)
	if m.compacted != 1 || m.histEvents != 3 {
		t.Fatalf("past the bound: compacted %d, %d events; want 1 and 3", m.compacted, m.histEvents)
	}
	f.wantDelivery(t, f.apply(putEntry(4, "e", "E")))
	f.inspect(t, read)
	if m.compacted != 2 || m.histEvents != 2 {
		t.Fatalf("a revision is dropped whole: compacted %d, %d events; want 2 and 2", m.compacted, m.histEvents)
	}
	f.request(messages.Range{Start: "a", End: store.RangeEndAll, Revision: 1, Serializable: true}).wantErr(t, messages.ErrCompacted)
	if r := f.request(messages.Range{Start: "a", End: store.RangeEndAll, Revision: 2, Serializable: true}).result(t); r.Err != nil || len(r.Results[0].KVs) != 3 {
		t.Fatalf("range at the compacted revision: %+v", r)
	}
}

// A compaction goes through raft: refused before it is proposed at or
// below the compacted revision, answered once applied with the store's
// revision, or with ErrFutureRevision when the store has not reached it;
// reads below it are compacted after, at it are served. The hub hears of
// nothing: a compaction changes no key.
func TestActorCompact(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	w := f.watchProbe(t)
	f.request(messages.Compact{}).wantErr(t, messages.ErrCompacted)
	f.raftQuiet(t)
	f.wantDelivery(t, f.apply(putEntry(1, "a", "1"), putEntry(2, "a", "2"), putEntry(3, "a", "3")))
	watchEvents(t, w, "the puts")

	if r := f.write(t, 4, messages.Compact{Revision: 9}); !errors.Is(r.Err, messages.ErrFutureRevision) || r.Index != 4 {
		t.Fatalf("compaction past the store's revision answered %+v, want ErrFutureRevision at 4", r)
	}
	if r := f.write(t, 5, messages.Compact{Revision: 2}); r.Err != nil || r.Index != 5 || r.Revision != 3 {
		t.Fatalf("compaction answered %+v, want success at 5 with revision 3", r)
	}
	f.request(messages.Range{Start: "a", Revision: 1, Serializable: true}).wantErr(t, messages.ErrCompacted)
	if r := f.request(messages.Range{Start: "a", Revision: 2, Serializable: true}).result(t); r.Err != nil || string(r.Results[0].KVs[0].Value) != "2" {
		t.Fatalf("range at the compacted revision: %+v", r)
	}
	// Compacted already: refused here, nothing proposed.
	for _, rev := range []uint64{1, 2} {
		f.request(messages.Compact{Revision: rev}).wantErr(t, messages.ErrCompacted)
	}
	f.raftQuiet(t)
	// The next changes the hub hears of are the next put's (commits
	// aside).
	f.wantDelivery(t, f.apply(putEntry(6, "b", "1")))
	for {
		m := recv[any](t, w.got, "the put at 6")
		if _, ok := m.(messages.WatchCommitted); ok {
			continue
		}
		if ev, ok := m.(messages.WatchEvents); !ok || kvtest.EventNames(ev.Events) != "[b@6]" {
			t.Fatalf("the hub heard %+v, want the put at 6", m)
		}
		break
	}
	f.noFatal(t)
}

// A restore replaces the state whole: the hub hears WatchReset with the new
// revision and history, and no event of what came with it. Entries the db
// already holds (replayed) send no events either.
func TestActorWatchReset(t *testing.T) {
	t.Run("inline snapshot", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		w := f.watchProbe(t)
		f.wantDelivery(t, f.apply(putEntry(1, "old", "1")))
		watchEvents(t, w, "the put at 1")

		snap := testState{members: map[uint64]string{1: "http://a:2380"}, data: map[string]string{"k": "v", "j": "w"}}.snapshot(t, 10, confState([]uint64{1}, nil))
		f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: snap})
		recv[messages.MembersRestored](t, f.raft.got, "MembersRestored")
		if r := recv[messages.WatchReset](t, w.got, "WatchReset"); r.Revision != 10 || r.Compacted != 10 {
			t.Fatalf("WatchReset %+v, want revision and compacted 10", r)
		}
		var err error
		f.inspect(t, func(*Actor) { err = restoredHistoryErr(f.state, 10) })
		if err != nil {
			t.Fatal(err)
		}
		f.quiet(t, w, "the watch hub")

		// Replayed entries (at or below the restored index) write nothing
		// and send nothing; the next one does.
		f.wantDelivery(t, f.apply(putEntry(9, "k", "stale"), putEntry(10, "j", "stale"), putEntry(11, "z", "3")))
		if ev := watchEvents(t, w, "the put at 11"); kvtest.EventNames(ev.Events) != "[z@11]" || ev.Revision != 11 {
			t.Fatalf("WatchEvents %s at %d, want [z@11] at 11", kvtest.EventNames(ev.Events), ev.Revision)
		}
		f.commitNow(t)
		if c := recv[messages.WatchCommitted](t, w.got, "WatchCommitted"); c.Revision != 11 {
			t.Fatalf("WatchCommitted %+v", c)
		}
		f.quiet(t, w, "the watch hub")
	})

	t.Run("raftexample snapshot", func(t *testing.T) {
		f := raftexampleFixture(t, nil)
		w := f.watchProbe(t)
		f.wantDelivery(t, f.apply(gobEntry(t, 1, "/old", "1")))
		watchEvents(t, w, "the put at 1")
		f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: jsonSnapshot(`{"k":"v","j":"w"}`, 10, confState([]uint64{1}, nil))})
		recv[messages.MembersRestored](t, f.raft.got, "MembersRestored")
		if r := recv[messages.WatchReset](t, w.got, "WatchReset"); r.Revision != 10 || r.Compacted != 10 {
			t.Fatalf("WatchReset %+v, want revision and compacted 10", r)
		}
		var err error
		f.inspect(t, func(*Actor) { err = restoredHistoryErr(f.state, 10) })
		if err != nil {
			t.Fatal(err)
		}
		f.quiet(t, w, "the watch hub")
	})

	t.Run("snapshot db", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		w := f.watchProbe(t)
		f.wantDelivery(t, f.apply(putEntry(1, "old", "1")))
		watchEvents(t, w, "the put at 1")

		// The leader's db, at 12, its history compacted through 5.
		src := openTestState(t, apply.FormatNative)
		for i := uint64(2); i <= 12; i++ {
			if err := src.st.Put(fmt.Sprint("k", i%3), []byte(fmt.Sprint(i)), i, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := src.st.CompactHistory(7, store.DefaultHistoryBytes); err != nil {
			t.Fatal(err)
		}
		src.st.SetApplied(12, 1, confState([]uint64{1}, nil))
		if err := src.st.Commit(); err != nil {
			t.Fatal(err)
		}
		streamDB(t, src, f.stateCfg.SnapshotDB(10), 10)

		f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: dbSnapshot(10, confState([]uint64{1}, nil))})
		recv[messages.MembersRestored](t, f.raft.got, "MembersRestored")
		if r := recv[messages.WatchReset](t, w.got, "WatchReset"); r.Revision != 12 || r.Compacted != 5 {
			t.Fatalf("WatchReset %+v, want revision 12, compacted 5", r)
		}
		f.quiet(t, w, "the watch hub")
		// Entries 11 and 12 are in the db: replayed, no events.
		f.wantDelivery(t, f.apply(putEntry(11, "k2", "stale"), putEntry(12, "k0", "stale"), putEntry(13, "n", "1")))
		if ev := watchEvents(t, w, "the put at 13"); kvtest.EventNames(ev.Events) != "[n@13]" || ev.Revision != 13 {
			t.Fatalf("WatchEvents %s at %d, want [n@13] at 13", kvtest.EventNames(ev.Events), ev.Revision)
		}
		f.quiet(t, w, "the watch hub")
		// The db's history came with it.
		if r := f.request(messages.Range{Start: "k", End: "l", Revision: 6, Serializable: true}).result(t); r.Err != nil || fmtKVs(r.Results[0].KVs) != `["k0"="6" c3 m6 v2]["k1"="4" c4 m4 v1]["k2"="5" c2 m5 v2]` {
			t.Fatalf("range at 6 of the received db: %+v", r)
		}
		f.noFatal(t)
	})
}

// A transaction whose entry the db already holds (replayed) proves nothing
// about its outcome: its client must not be told it failed (a conditional
// write answered 412) or succeeded; it is left to time out, as a put whose
// record does not show the entry is.
func TestActorReplayedTxnNotAnswered(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.wantDelivery(t, f.apply(putEntry(1, "a", "1"), putEntry(2, "b", "2")))
	w := f.request(messages.Txn{
		Compares: []messages.Compare{kvtest.CmpNum("k", messages.CompareCreateRevision, messages.CompareEqual, 0)},
		Success:  []messages.TxnOp{kvtest.TxnPut("k", "mine")},
		Failure:  []messages.TxnOp{kvtest.TxnGet("k")},
	})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	f.wantDelivery(t, f.apply(normalEntry(2, p.Data), putEntry(3, "c", "3")))
	w.pending(t)
	f.get(t, "k", nil, 3)

	// Applied at a new index, it runs and is answered.
	f.wantDelivery(t, f.apply(normalEntry(4, p.Data)))
	if r := w.result(t); r.Err != nil || !r.Succeeded || r.Revision != 4 {
		t.Fatalf("the transaction applied at 4: %+v", r)
	}
}

// A peer's entry is checked as it would be applied: a transaction whose
// body does not decode is refused before it is appended, alone or in a
// batch, instead of stopping every member that applies it.
func TestValidEntryChecksTxn(t *testing.T) {
	a, err := NewActor(wired(t, Config{}))
	if err != nil {
		t.Fatal(err)
	}
	good := txnEntry(t, 0, 1, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "v")}}).GetData()
	// k written twice: the API refuses it, so k is swapped in after.
	bad := uncheckedTxnEntry(t, 0, 2, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnPut(standIn, "2")}}, "k", apply.ErrBadCommand).GetData()
	c := proposeTxn(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "v")}})
	c.ReqID, c.Value = 3, c.Value[:4]
	cut := encodeNative(c)
	for _, c := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"a transaction", good, true},
		{"a batch of transactions", apply.EncodeBatch(9, [][]byte{good, good}, 0), true},
		{"a key written twice", bad, false},
		{"a body cut short", cut, false},
		{"in a batch", apply.EncodeBatch(9, [][]byte{good, cut}, 0), false},
	} {
		err := a.ValidEntry(c.data)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, apply.ErrBadCommand)) {
			t.Errorf("%s: ValidEntry = %v, want ok %v (or ErrBadCommand)", c.name, err, c.ok)
		}
	}
}

// ReadEvents, from another goroutine while the kv actor applies, reads only
// what the db committed: never an event the actor holds uncommitted.
func TestActorReadEventsSeesCommitted(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	// The committed revision: every entry here puts a key at its index,
	// so the revision of a commit is its applied index.
	committed := func() uint64 {
		t.Helper()
		var m dbMeta
		var err error
		f.inspect(t, func(a *Actor) { m, err = dbMetaOf(a.st) })
		if err != nil {
			t.Fatal(err)
		}
		return m.applied
	}
	f.wantDelivery(t, f.apply(putEntry(1, "a", "1"), putEntry(2, "b", "1"), putEntry(3, "a", "2")))
	f.commitNow(t)
	for idx := uint64(4); idx <= 8; idx++ {
		f.wantDelivery(t, f.apply(putEntry(idx, "c", fmt.Sprint(idx))))
		// The commit timer may commit at any time: what ReadEvents
		// read is bounded by the commits seen before and after it.
		before := committed()
		evs, through, err := kvtest.ReadEventsAsync(f.state, 1, 1000)
		after := committed()
		if err != nil || through < before || through > after {
			t.Fatalf("after entry %d: ReadEvents through %d (%v), committed %d before and %d after", idx, through, err, before, after)
		}
		if len(evs) != int(through) || evs[len(evs)-1].Revision() != through {
			t.Fatalf("after entry %d: ReadEvents through %d passed %s", idx, through, kvtest.EventNames(evs))
		}
	}
	f.noFatal(t)
}

// A write is answered only after the watch hub heard of it, so that a
// client opening a watch "from now" after its answer finds the write at or
// below the hub's revision, never after it. The client and the hub are one
// probe here: its mailbox keeps the order the kv actor sent in.
func TestActorAnswersAfterTheHubHears(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	put := f.request(messages.Put{Key: "a", Value: []byte("1")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	f.inspect(t, func(a *Actor) { a.cfg.Watch = put.p.pid })
	f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
	if ev := watchEvents(t, put.p, "the hub's events, ahead of the answer"); kvtest.EventNames(ev.Events) != "[a@1]" || ev.Revision != 1 {
		t.Fatalf("WatchEvents %s at %d, want [a@1] at 1", kvtest.EventNames(ev.Events), ev.Revision)
	}
	if r := put.result(t); r.Err != nil || r.Revision != 1 {
		t.Fatalf("answer %+v, want revision 1", r)
	}
}
