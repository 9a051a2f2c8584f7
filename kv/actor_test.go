package kv

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/internal/legacysnap"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// waitFor bounds every wait on the actors; a correct run never comes near it.
const waitFor = 5 * time.Second

// probeBarrier is recorded by a probe in mailbox order: once it comes out of
// a probe's channel, everything sent to the probe before it has come out too.
type probeBarrier struct{}

func isLifecycle(m any) bool {
	switch m.(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return true
	}
	return false
}

// probe records every message it gets, in order.
type probe struct {
	pid *actor.PID
	got chan any
}

func spawnProbe(system *actor.ActorSystem, answer func(ctx actor.Context)) *probe {
	p := &probe{got: make(chan any, 256)}
	p.pid = system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if isLifecycle(ctx.Message()) {
			return
		}
		p.got <- ctx.Message()
		if answer != nil {
			answer(ctx)
		}
	}))
	return p
}

// raftProbe stands in for the raft actor: it records what it gets and
// answers ApplyConfChange with the ConfState the change leads to.
type raftProbe struct {
	*probe
	mu       sync.Mutex
	answered []uint64 // indexes of the ApplyConfChange answered so far
}

func spawnRaftProbe(system *actor.ActorSystem, silent, decline bool) *raftProbe {
	r := &raftProbe{}
	voters, learners := map[uint64]bool{}, map[uint64]bool{} // owned by the probe's Receive
	r.probe = spawnProbe(system, func(ctx actor.Context) {
		acc, ok := ctx.Message().(messages.ApplyConfChange)
		if !ok || silent {
			return
		}
		if decline {
			ctx.Respond(messages.ConfChangeApplied{ConfState: confState(slices.Sorted(maps.Keys(voters)), slices.Sorted(maps.Keys(learners))),
				Err: messages.ErrConfChangeDeclined})
			return
		}
		for _, c := range acc.Change.AsV2().GetChanges() {
			id := c.GetNodeId()
			switch c.GetType() {
			case raftpb.ConfChangeAddNode:
				voters[id] = true
				delete(learners, id)
			case raftpb.ConfChangeAddLearnerNode:
				learners[id] = true
				delete(voters, id)
			case raftpb.ConfChangeRemoveNode:
				delete(voters, id)
				delete(learners, id)
			}
		}
		r.mu.Lock()
		r.answered = append(r.answered, acc.Index)
		r.mu.Unlock()
		ctx.Respond(messages.ConfChangeApplied{ConfState: confState(slices.Sorted(maps.Keys(voters)), slices.Sorted(maps.Keys(learners)))})
	})
	return r
}

func (r *raftProbe) answeredIndexes() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.answered)
}

func confState(voters, learners []uint64) *raftpb.ConfState {
	return raftpb.EnsureConfState(&raftpb.ConfState{Voters: voters, Learners: learners})
}

// testState is the content of a state machine as the tests write and
// compare it: the data, the member list and the removed ids (sorted).
type testState struct {
	data    map[string]string
	members map[uint64]string
	removed []uint64
}

// viewOf reads a store's content. It does not call t.Fatal, so that the kv
// actor's goroutine may call it.
func viewOf(s *store.Store) (testState, error) {
	data, err := storeData(s)
	return testState{data: data, members: s.Members(), removed: slices.Sorted(slices.Values(s.Removed()))}, err
}

// checkState compares two contents; nil and empty compare equal.
func checkState(t *testing.T, what string, got, want testState) {
	t.Helper()
	if !maps.Equal(got.data, want.data) {
		t.Errorf("%s: data %q, want %q", what, got.data, want.data)
	}
	if !maps.Equal(got.members, want.members) {
		t.Errorf("%s: members %v, want %v", what, got.members, want.members)
	}
	if !slices.Equal(got.removed, want.removed) {
		t.Errorf("%s: removed %v, want %v", what, got.removed, want.removed)
	}
}

// write puts w into st, which is empty, as the db of a member that applied
// the log up to index (every key written at that index), and commits it.
func (w testState) write(t testing.TB, st *State, index uint64, cs *raftpb.ConfState) {
	t.Helper()
	for id, u := range w.members {
		if err := st.st.AddMember(id, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range w.removed {
		if err := st.st.RemoveMember(id); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range w.data {
		if err := st.st.Put(k, []byte(v), index, 0); err != nil {
			t.Fatal(err)
		}
	}
	st.st.TakeEvents() // no watch hub hears of these
	st.st.SetApplied(index, 1, cs)
	if err := st.st.Commit(); err != nil {
		t.Fatal(err)
	}
}

// snapshot is a snapshot at idx carrying w inline in the previous layout's
// native format: what a data dir of that layout holds (OpenState migrates
// it), or what a leader of that layout sends.
func (w testState) snapshot(t testing.TB, idx uint64, cs *raftpb.ConfState) *raftpb.Snapshot {
	t.Helper()
	return &raftpb.Snapshot{
		Data:     legacysnap.Encode(w.members, w.removed, w.data),
		Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(uint64(1)), ConfState: cs},
	}
}

// dbMeta is what a db's last commit holds, as far as the tests look.
type dbMeta struct {
	applied uint64 // the applied index
}

// dbMetaOf reads the meta data of s's last commit: what a restart, or a
// follower the db is streamed to, would find. The store's snapshot stream
// is of the last commit and names its applied index; the stream itself is
// not read. A new db's layout is committed when it is made, so there is
// always a commit to read.
func dbMetaOf(s *store.Store) (dbMeta, error) {
	rc, applied, err := s.SnapshotReader()
	if err != nil {
		return dbMeta{}, err
	}
	return dbMeta{applied: applied}, rc.Close()
}

// storeData reads every key and value a store holds, committed or not. It
// does not call t.Fatal, so that the kv actor's goroutine may call it (the
// fixture's Deliver reads the state there).
func storeData(s *store.Store) (map[string]string, error) {
	out := make(map[string]string)
	err := store.ForEach(s.Backend().Tx(), func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	return out, err
}

// encodeNative spells c as a native entry's data, as the kv actor proposes
// it.
func encodeNative(c apply.Command) []byte {
	codec, err := apply.FormatNative.Codec()
	if err != nil {
		panic(err)
	}
	data, err := codec.Encode(c)
	if err != nil {
		panic(err) // the native format encodes every command
	}
	return data
}

// decodeNative reads a native entry's data as the applier does.
func decodeNative(data []byte) (apply.Command, error) {
	codec, err := apply.FormatNative.Codec()
	if err != nil {
		return apply.Command{}, err
	}
	return codec.Decode(data)
}

// delivery is one call of Deliver, with what the state machine held then.
type delivery struct {
	msgs        []*raftpb.Message
	applied     uint64
	data        map[string]string
	members     map[uint64]string
	removed     map[uint64]bool
	confChanges []uint64 // ApplyConfChange indexes the raft probe had answered
	pending     int      // entries applied and not yet committed to the db
	committed   uint64   // the applied index of the db's last commit
	err         error    // reading the state failed
}

// snapSend is what the kv actor's db held when the actor sent a snapshot
// on: CreateSnapshot to the snapshotter (native format) or encodeSnapshot to
// the encoder (raftexample's).
type snapSend struct {
	index     uint64 // the snapshot's
	pending   int
	committed uint64
	err       error
}

type fixture struct {
	system    *actor.ActorSystem
	act       *Actor
	pid       *actor.PID
	raft      *raftProbe
	snap      *probe
	delivered chan delivery
	fatals    chan messages.Fatal
	snapSent  chan snapSend
	dir       string // the member's data dir
	state     *State // the actor's
	stateCfg  StateConfig
	stopped   bool
	closed    bool
}

type fixtureOpts struct {
	cfg               func(*Config)
	silentConfChange  bool // the raft probe never answers ApplyConfChange
	declineConfChange bool // the raft probe declines every conf change
	props             []actor.PropsOption
	// codec wraps the actor's codec: the one it proposes and encodes
	// snapshots with (the applier decodes entries with its own).
	codec func(apply.Codec) apply.Codec
	// snapshot is the newest snapshot of the member's log: OpenState makes
	// the db from its inline data, as it migrates a data dir of the
	// previous layout.
	snapshot *raftpb.Snapshot
	// dir is the data dir, t.TempDir() if empty; a restart opens the dir of
	// a fixture that was shut down.
	dir string
}

// newFixture spawns a kv actor over a State in a data dir, wired to probes.
// Its cleanup stops the actor, closes the State and stops the system, then
// checks that no goroutine is left behind.
func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	t.Cleanup(func() {
		testutil.VerifyNone(t)
	})
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	f := &fixture{
		system:    system,
		raft:      spawnRaftProbe(system, o.silentConfChange, o.declineConfChange),
		snap:      spawnProbe(system, nil),
		delivered: make(chan delivery, 64),
		fatals:    make(chan messages.Fatal, 8),
		snapSent:  make(chan snapSend, 64),
		dir:       o.dir,
	}
	if f.dir == "" {
		f.dir = t.TempDir()
	}
	cfg := Config{
		ID:          1,
		Raft:        f.raft.pid,
		Snapshotter: f.snap.pid,
		// Runs on the kv actor, so it may look at the state directly.
		Deliver: func(msgs []*raftpb.Message) {
			d := delivery{
				msgs:        msgs,
				applied:     f.act.applied,
				members:     f.act.st.Members(),
				removed:     make(map[uint64]bool),
				confChanges: f.raft.answeredIndexes(),
				pending:     f.act.st.Backend().Pending(),
			}
			for _, id := range f.act.st.Removed() {
				d.removed[id] = true
			}
			data, err1 := storeData(f.act.st)
			m, err2 := dbMetaOf(f.act.st)
			d.data, d.committed, d.err = data, m.applied, errors.Join(err1, err2)
			f.delivered <- d
		},
		Fatal:             func(m messages.Fatal) { f.fatals <- m },
		Logger:            zap.NewNop(),
		ConfChangeTimeout: waitFor,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	f.stateCfg = testStateConfig(f.dir, cfg.Format, o.snapshot)
	state, err := OpenState(f.stateCfg)
	if err != nil {
		system.Shutdown()
		t.Fatalf("OpenState: %v", err)
	}
	f.state = state
	cfg.State = state
	if cfg.SnapshotDB == nil {
		cfg.SnapshotDB = f.stateCfg.SnapshotDB
	}
	act, err := NewActor(cfg)
	if err != nil {
		_ = state.Close()
		system.Shutdown()
		t.Fatalf("NewActor: %v", err)
	}
	if o.codec != nil {
		act.codec = o.codec(act.codec)
	}
	f.act = act
	props := append([]actor.PropsOption{
		actor.WithReceiverMiddleware(inspectMiddleware(act)),
		actor.WithSenderMiddleware(f.snapSendMiddleware),
	}, o.props...)
	f.pid = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return act }, props...))
	t.Cleanup(func() { f.shutdown(t) })
	return f
}

// snapSendMiddleware records, on the kv actor's goroutine, what its db held
// when it sent a snapshot on: the snapshot must never be ahead of what the
// db holds durably, or the log could be compacted past it.
func (f *fixture) snapSendMiddleware(next actor.SenderFunc) actor.SenderFunc {
	return func(ctx actor.SenderContext, target *actor.PID, env *actor.MessageEnvelope) {
		var s snapSend
		switch m := env.Message.(type) {
		case messages.CreateSnapshot:
			s.index = m.Index
		case encodeSnapshot:
			s.index = m.index
		}
		if s.index > 0 {
			m, err := dbMetaOf(f.act.st)
			s.pending, s.committed, s.err = f.act.st.Backend().Pending(), m.applied, err
			select {
			case f.snapSent <- s:
			default: // a test that takes more snapshots than this does not look at them
			}
		}
		next(ctx, target, env)
	}
}

func (f *fixture) stop(t *testing.T) {
	t.Helper()
	if f.stopped {
		return
	}
	f.stopped = true
	if err := f.system.Root.StopFuture(f.pid).Wait(); err != nil {
		t.Errorf("stopping the kv actor: %v", err)
	}
}

// shutdown stops the actor, then closes its State (the actor commits on
// stop; Close commits the rest and closes the db) and the actor system.
func (f *fixture) shutdown(t *testing.T) {
	t.Helper()
	f.stop(t)
	if f.closed {
		return
	}
	f.closed = true
	// bbolt's Close waits for every read transaction: one left open (a
	// snapshot encoding that never ended) would hang the test here.
	done := make(chan error, 1)
	go func() { done <- f.state.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("closing the state: %v", err)
		}
	case <-time.After(waitFor):
		t.Errorf("closing the state: blocked for %v, a read transaction was left open", waitFor)
	}
	f.system.Shutdown()
}

// call is a client request made with RequestFuture. Its answer is piped into
// a probe so that "no answer yet" can be checked in mailbox order.
type call struct {
	f    *fixture
	what string
	p    *probe
}

func (f *fixture) request(msg any) *call {
	c := &call{f: f, what: fmt.Sprintf("%T%+v", msg, msg), p: spawnProbe(f.system, nil)}
	f.system.Root.RequestFuture(f.pid, msg, 2*waitFor).PipeTo(c.p.pid)
	return c
}

func (c *call) result(t *testing.T) messages.Result {
	t.Helper()
	return recv[messages.Result](t, c.p.got, "answer to "+c.what)
}

// pending fails if the request has been answered by now. The kv actor
// answers a MembersRequest sent after the request only once it handled the
// request, so an answer it gave is in the call's mailbox ahead of the barrier.
func (c *call) pending(t *testing.T) {
	t.Helper()
	c.f.sync(t)
	c.f.system.Root.Send(c.p.pid, probeBarrier{})
	recv[probeBarrier](t, c.p.got, "no answer yet to "+c.what)
}

func (c *call) wantErr(t *testing.T, want error) {
	t.Helper()
	r := c.result(t)
	if !errors.Is(r.Err, want) {
		t.Fatalf("answer to %s: err = %v, want %v (result %+v)", c.what, r.Err, want, r)
	}
}

// sync returns once the kv actor has handled everything sent to it before.
func (f *fixture) sync(t *testing.T) messages.Result {
	t.Helper()
	res, err := f.system.Root.RequestFuture(f.pid, messages.MembersRequest{}, waitFor).Result()
	if err != nil {
		t.Fatalf("MembersRequest: %v", err)
	}
	r, ok := res.(messages.Result)
	if !ok {
		t.Fatalf("MembersRequest answered %T", res)
	}
	return r
}

// quiet fails if the kv actor has sent p anything not yet taken from p.got.
func (f *fixture) quiet(t *testing.T, p *probe, name string) {
	t.Helper()
	f.sync(t)
	f.system.Root.Send(p.pid, probeBarrier{})
	recv[probeBarrier](t, p.got, "nothing more sent to "+name)
}

func (f *fixture) raftQuiet(t *testing.T) { t.Helper(); f.quiet(t, f.raft.probe, "raft") }

// snapQuiet fails if anything more reached the snapshotter. raftexample's
// snapshots reach it through the encoder, so it first waits until the kv
// actor holds no snapshot in encoding: the encoder sends CreateSnapshot
// before it tells the kv actor it is done, so every CreateSnapshot is then
// ahead of the barrier. The native format's go straight from the kv actor.
func (f *fixture) snapQuiet(t *testing.T) {
	t.Helper()
	err := testutil.Poll(waitFor, time.Millisecond, func() error {
		if f.encoding(t) {
			return errors.New("a snapshot is still encoding")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.quiet(t, f.snap, "the snapshotter")
}

// inspect runs fn on the kv actor's goroutine, in mailbox order, so that a
// test may read (or, to set up a case, write) the actor's state without a
// race. inspectMiddleware runs it, so the production actor needs no hook
// for tests. fn must not call t.Fatal.
type inspect struct{ fn func(a *Actor) }

func inspectMiddleware(a *Actor) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if q, ok := env.Message.(inspect); ok {
				q.fn(a)
				ctx.(actor.Context).Send(env.Sender, probeBarrier{})
				return
			}
			next(ctx, env)
		}
	}
}

func (f *fixture) inspect(t *testing.T, fn func(a *Actor)) {
	t.Helper()
	if _, err := f.system.Root.RequestFuture(f.pid, inspect{fn}, waitFor).Result(); err != nil {
		t.Fatalf("inspecting the kv actor: %v", err)
	}
}

// encoding tells whether the snapshot encoder holds a read transaction.
func (f *fixture) encoding(t *testing.T) bool {
	t.Helper()
	var enc bool
	f.inspect(t, func(a *Actor) { enc = a.encoding })
	return enc
}

// view reads the actor's state.
func (f *fixture) view(t *testing.T) testState {
	t.Helper()
	var v testState
	var err error
	f.inspect(t, func(a *Actor) { v, err = viewOf(a.st) })
	if err != nil {
		t.Fatalf("reading the state: %v", err)
	}
	return v
}

// dbState is the actor's db as to its batched commits.
type dbState struct {
	applied   uint64 // as the actor sees it
	pending   int    // entries applied since the last commit
	committed uint64 // the applied index of the last commit
}

func (f *fixture) db(t *testing.T) dbState {
	t.Helper()
	var s dbState
	var err error
	f.inspect(t, func(a *Actor) {
		var m dbMeta
		m, err = dbMetaOf(a.st)
		s = dbState{applied: a.applied, pending: a.st.Backend().Pending(), committed: m.applied}
	})
	if err != nil {
		t.Fatalf("reading the db's meta data: %v", err)
	}
	return s
}

func recv[T any](t *testing.T, ch <-chan any, what string) T {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	var zero T
	select {
	case m := <-ch:
		v, ok := m.(T)
		if !ok {
			t.Fatalf("%s: got %T %+v, want a %T", what, m, m, zero)
		}
		return v
	case <-timer.C:
		t.Fatalf("%s: no %T within %v", what, zero, waitFor)
	}
	return zero
}

// apply sends a MsgStorageApply of entries and returns its responses.
func (f *fixture) apply(entries ...*raftpb.Entry) []*raftpb.Message {
	resps := []*raftpb.Message{
		{Type: raftpb.MsgStorageApplyResp.Enum(), To: new(uint64(1)), Entries: entries},
		{Type: raftpb.MsgStorageApplyResp.Enum(), To: new(uint64(1))},
	}
	f.system.Root.Send(f.pid, &raftpb.Message{Type: raftpb.MsgStorageApply.Enum(), Entries: entries, Responses: resps})
	return resps
}

// wantDelivery waits for Deliver and checks it got exactly resps.
func (f *fixture) wantDelivery(t *testing.T, resps []*raftpb.Message) delivery {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case d := <-f.delivered:
		if d.err != nil {
			t.Fatalf("reading the state at Deliver: %v", d.err)
		}
		if len(d.msgs) != len(resps) {
			t.Fatalf("Deliver got %d messages, want %d", len(d.msgs), len(resps))
		}
		for i := range resps {
			if d.msgs[i] != resps[i] {
				t.Fatalf("Deliver got message %d = %v, want the apply's response %v", i, d.msgs[i], resps[i])
			}
		}
		return d
	case <-timer.C:
		t.Fatalf("Deliver not called within %v", waitFor)
	}
	return delivery{}
}

func (f *fixture) noDelivery(t *testing.T) {
	t.Helper()
	f.sync(t)
	select {
	case d := <-f.delivered:
		t.Fatalf("Deliver called with %v (applied %d)", d.msgs, d.applied)
	default:
	}
}

func (f *fixture) wantFatal(t *testing.T) messages.Fatal {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case m := <-f.fatals:
		return m
	case <-timer.C:
		t.Fatalf("Fatal not called within %v", waitFor)
	}
	return messages.Fatal{}
}

func (f *fixture) noFatal(t *testing.T) {
	t.Helper()
	f.sync(t)
	select {
	case m := <-f.fatals:
		t.Fatalf("Fatal called: %v", m)
	default:
	}
}

// wantSnapSent checks that the kv actor sent the snapshot at index on only
// once its db had committed that index, and nothing after it.
func (f *fixture) wantSnapSent(t *testing.T, index uint64) {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case s := <-f.snapSent:
		if s.err != nil {
			t.Fatalf("reading the db when the snapshot at %d was sent: %v", s.index, s.err)
		}
		if s.index != index || s.pending != 0 || s.committed != index {
			t.Fatalf("snapshot at %d sent with %d entries uncommitted and the db committed at %d; want the snapshot at %d, all committed",
				s.index, s.pending, s.committed, index)
		}
	case <-timer.C:
		t.Fatalf("no snapshot at %d sent within %v", index, waitFor)
	}
}

// commitNow has the actor commit its db, as its commitTick does, and
// returns once it has.
func (f *fixture) commitNow(t *testing.T) {
	t.Helper()
	f.system.Root.Send(f.pid, commitTick{})
	f.sync(t)
}

// copyDB streams the actor's db, as of its last commit, to a follower's
// data dir, as the transport does, and opens it there. The stream must hold
// index exactly.
func (f *fixture) copyDB(t *testing.T, index uint64) *State {
	t.Helper()
	dir := t.TempDir()
	if got := streamDB(t, f.state, filepath.Join(dir, DBFile), index); got != index {
		t.Fatalf("the db streamed holds index %d, want %d", got, index)
	}
	st, err := OpenState(testStateConfig(dir, f.stateCfg.Format, nil))
	if err != nil {
		t.Fatalf("opening the db streamed: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// streamDB streams src's db into ReceiveSnapshotDB at path, for a snapshot
// at index, and returns the applied index the stream held.
func streamDB(t *testing.T, src *State, path string, index uint64) uint64 {
	t.Helper()
	rc, held, err := src.st.SnapshotReader()
	if err != nil {
		t.Fatalf("SnapshotReader: %v", err)
	}
	defer rc.Close()
	if err := store.ReceiveSnapshotDB(path, index, rc); err != nil {
		t.Fatalf("ReceiveSnapshotDB: %v", err)
	}
	return held
}

// get reads key from local state (serializable) and checks the answer.
func (f *fixture) get(t *testing.T, key string, want *string, wantIndex uint64) {
	t.Helper()
	r := f.request(messages.Get{Key: key, Serializable: true}).result(t)
	if r.Err != nil {
		t.Fatalf("Get %q: %v", key, r.Err)
	}
	switch {
	case want == nil && r.Found:
		t.Errorf("Get %q = %q, want not found", key, r.Value)
	case want != nil && (!r.Found || string(r.Value) != *want):
		t.Errorf("Get %q = %q (found %v), want %q", key, r.Value, r.Found, *want)
	}
	if r.Index != wantIndex {
		t.Errorf("Get %q at index %d, want %d", key, r.Index, wantIndex)
	}
}

func str(s string) *string { return &s }

func normalEntry(idx uint64, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Term: new(uint64(1)), Index: new(idx), Type: raftpb.EntryNormal.Enum(), Data: data}
}

// putEntry is a put proposed by no waiting client (request id 0).
func putEntry(idx uint64, key, value string) *raftpb.Entry {
	return normalEntry(idx, encodeNative(apply.Command{Op: apply.OpPut, Key: key, Value: []byte(value)}))
}

func confChangeEntry(t *testing.T, idx uint64, cc proto.Message) *raftpb.Entry {
	t.Helper()
	data, err := proto.Marshal(cc)
	if err != nil {
		t.Fatalf("marshal conf change: %v", err)
	}
	typ := raftpb.EntryConfChange
	if _, ok := cc.(*raftpb.ConfChangeV2); ok {
		typ = raftpb.EntryConfChangeV2
	}
	return &raftpb.Entry{Term: new(uint64(1)), Index: new(idx), Type: typ.Enum(), Data: data}
}

func addNode(id uint64, url string, reqID uint64) *raftpb.ConfChange {
	return &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id), Context: []byte(url), Id: new(reqID)}
}

// dbSnapshot is a native snapshot as raft hands it over: metadata only, its
// db received on its own stream.
func dbSnapshot(idx uint64, cs *raftpb.ConfState) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(uint64(1)), ConfState: cs}}
}

// (a) A write is answered only once its entry is applied, and the apply's
// responses go to Deliver only after its entries are in the state.
func TestActorWriteAnsweredOnApply(t *testing.T) {
	cases := []struct {
		name      string
		req       any
		wantOp    apply.Op
		wantValue string
		wantGet   *string
	}{
		{"put", messages.Put{Key: "k", Value: []byte("new")}, apply.OpPut, "new", str("new")},
		{"put empty value", messages.Put{Key: "k"}, apply.OpPut, "", str("")},
		{"delete", messages.Delete{Key: "k"}, apply.OpDelete, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.wantDelivery(t, f.apply(putEntry(1, "k", "old")))

			w := f.request(c.req)
			p := recv[messages.Propose](t, f.raft.got, "Propose")
			cmd, err := decodeNative(p.Data)
			if err != nil {
				t.Fatalf("Propose data does not decode: %v", err)
			}
			if cmd.Op != c.wantOp || cmd.Key != "k" || string(cmd.Value) != c.wantValue || cmd.ReqID != p.ID {
				t.Fatalf("proposed %+v with id %d, want op %d key k value %q with the proposal's id", cmd, p.ID, c.wantOp, c.wantValue)
			}
			w.pending(t)
			f.get(t, "k", str("old"), 1) // nothing applied on proposal

			// Another entry settles nothing.
			f.wantDelivery(t, f.apply(normalEntry(2, nil)))
			w.pending(t)

			resps := f.apply(normalEntry(3, p.Data))
			if r := w.result(t); r.Err != nil || r.Index != 3 {
				t.Fatalf("answer = %+v, want success at index 3", r)
			}
			d := f.wantDelivery(t, resps)
			if d.applied != 3 {
				t.Errorf("Deliver called with applied %d, want 3", d.applied)
			}
			if v, ok := d.data["k"]; ok != (c.wantGet != nil) || (ok && v != *c.wantGet) {
				t.Errorf("state when Deliver was called: k = %q (present %v), want %v", v, ok, c.wantGet)
			}
			f.get(t, "k", c.wantGet, 3)
			f.noDelivery(t)
			f.raftQuiet(t)
		})
	}
}

// An applied entry settles the request that proposed it and no other.
func TestActorEntrySettlesItsOwnRequest(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	first := f.request(messages.Put{Key: "a", Value: []byte("1")})
	p1 := recv[messages.Propose](t, f.raft.got, "first Propose")
	second := f.request(messages.Put{Key: "b", Value: []byte("2")})
	p2 := recv[messages.Propose](t, f.raft.got, "second Propose")
	if p1.ID == p2.ID {
		t.Fatalf("two proposals share request id %d", p1.ID)
	}
	f.wantDelivery(t, f.apply(normalEntry(1, p2.Data)))
	if r := second.result(t); r.Err != nil || r.Index != 1 {
		t.Fatalf("second answer = %+v, want success at 1", r)
	}
	first.pending(t)
	f.wantDelivery(t, f.apply(normalEntry(2, p1.Data)))
	if r := first.result(t); r.Err != nil || r.Index != 2 {
		t.Fatalf("first answer = %+v, want success at 2", r)
	}
}

// (b) A refused proposal is an error reply, never a success.
func TestActorProposalFailed(t *testing.T) {
	reqs := []struct {
		name string
		req  any
	}{
		{"put", messages.Put{Key: "k", Value: []byte("v")}},
		{"delete", messages.Delete{Key: "k"}},
		{"add member", messages.AddMember{ID: 5, PeerURL: "http://e:2380"}},
	}
	for _, r := range reqs {
		for _, reason := range []error{messages.ErrNoLeader, messages.ErrProposalDropped} {
			t.Run(fmt.Sprintf("%s/%v", r.name, reason), func(t *testing.T) {
				f := newFixture(t, fixtureOpts{})
				w := f.request(r.req)
				var id uint64
				switch m := recv[any](t, f.raft.got, "a proposal").(type) {
				case messages.Propose:
					id = m.ID
				case messages.ProposeConfChange:
					id = m.ID
				default:
					t.Fatalf("raft got %T, want a proposal", m)
				}
				// A failure for another request leaves this one waiting.
				f.system.Root.Send(f.pid, messages.ProposalFailed{ID: id + 1, Err: reason})
				w.pending(t)
				f.system.Root.Send(f.pid, messages.ProposalFailed{ID: id, Err: reason})
				w.wantErr(t, reason)
				f.noDelivery(t)
			})
		}
	}
}

// (c) Entries at or below the applied index are not applied twice: the db
// holds them already (after a restart, or with a snapshot's db ahead of the
// snapshot). A client waiting for such an entry is answered where the db
// proves the outcome (its key's last write is that entry); otherwise (the
// quota may have refused it, or a later write replaced it) it is left to
// time out, told the outcome is unknown.
func TestActorSkipsAppliedEntries(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.wantDelivery(t, f.apply(putEntry(1, "a", "1"), putEntry(2, "b", "2")))

	proven := f.request(messages.Put{Key: "b", Value: []byte("2")})
	pb := recv[messages.Propose](t, f.raft.got, "Propose")
	w := f.request(messages.Put{Key: "w", Value: []byte("x")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	// A replay at an applied index writes nothing.
	resps := f.apply(normalEntry(1, p.Data), normalEntry(2, pb.Data), putEntry(3, "c", "3"))
	if d := f.wantDelivery(t, resps); d.applied != 3 {
		t.Fatalf("applied %d after the replay, want 3", d.applied)
	}
	if r := proven.result(t); r.Err != nil || r.Index != 2 {
		t.Fatalf("answer to the write replayed at 2, which the db shows applied: %+v, want success", r)
	}
	w.pending(t) // w's record does not show the entry at 1
	f.get(t, "a", str("1"), 3)
	f.get(t, "b", str("2"), 3)
	f.get(t, "c", str("3"), 3)
	f.get(t, "w", nil, 3)
	// Not even its revisions moved: the record is the one written at 1.
	var rec messages.KV
	var err error
	f.inspect(t, func(a *Actor) { rec, _, err = a.st.Get("a") })
	if err != nil || rec.CreateRevision != 1 || rec.ModRevision != 1 || rec.Version != 1 {
		t.Fatalf("a's record after the replay: %+v (%v), want created and modified at 1, version 1", rec, err)
	}

	// The same write applied at a new index is written, and answered.
	f.wantDelivery(t, f.apply(normalEntry(4, p.Data)))
	if r := w.result(t); r.Err != nil {
		t.Fatalf("answer to the write applied at 4: %+v", r)
	}
	f.get(t, "w", str("x"), 4)
	// A raft message that is not an apply is ignored.
	f.system.Root.Send(f.pid, &raftpb.Message{Type: raftpb.MsgApp.Enum(), Entries: []*raftpb.Entry{putEntry(5, "a", "no")}})
	f.noDelivery(t)
	f.get(t, "a", str("1"), 4)
	f.noFatal(t)
}

// (c, f) A broken log or snapshot stops the state machine: Fatal is called,
// waiting requests and every later one get ErrStopped, nothing more is applied.
func TestActorFatal(t *testing.T) {
	cases := []struct {
		name    string
		silent  bool // the raft probe does not answer ApplyConfChange
		send    func(t *testing.T) any
		wantErr error
	}{
		{name: "gap", send: func(*testing.T) any { return applyOf(putEntry(3, "a", "gap")) }},
		{name: "gap after an entry", send: func(*testing.T) any { return applyOf(putEntry(2, "b", "2"), putEntry(4, "a", "gap")) }},
		// Entries that do not decode are refused, not fatal: refuse_test.go.
		{name: "conf change not applied by raft", silent: true, send: func(t *testing.T) any {
			return applyOf(confChangeEntry(t, 2, addNode(2, "http://b:2380", 0)))
		}},
		{name: "snapshot with garbage data", wantErr: store.ErrBadSnapshot, send: func(*testing.T) any {
			return messages.RestoreSnapshot{Snapshot: &raftpb.Snapshot{Data: []byte("garbage"), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(5))}}}
		}},
		// A snapshot without data comes with a db, which the transport
		// saved before raft handed the snapshot over: none is there.
		{name: "snapshot whose db was not received", wantErr: os.ErrNotExist, send: func(*testing.T) any {
			return messages.RestoreSnapshot{Snapshot: dbSnapshot(5, nil)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{silentConfChange: c.silent, cfg: func(cfg *Config) {
				cfg.ConfChangeTimeout = 50 * time.Millisecond
			}})
			f.wantDelivery(t, f.apply(putEntry(1, "a", "1")))
			put := f.request(messages.Put{Key: "k", Value: []byte("v")})
			recv[messages.Propose](t, f.raft.got, "Propose")
			read := f.request(messages.Get{Key: "a"})
			recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
			ready := f.request(messages.Get{Key: "a"})
			ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
			f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 100})
			ready.pending(t)

			f.system.Root.Send(f.pid, c.send(t))
			fatal := f.wantFatal(t)
			if fatal.Component != "kv" || fatal.Err == nil {
				t.Fatalf("Fatal(%+v), want component kv and an error", fatal)
			}
			if c.wantErr != nil && !errors.Is(fatal, c.wantErr) {
				t.Fatalf("Fatal error %v does not wrap %v", fatal, c.wantErr)
			}
			for _, w := range []*call{put, read, ready} {
				w.wantErr(t, messages.ErrStopped)
			}
			f.noDelivery(t)
			if c.silent {
				recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
			}

			for _, req := range []any{
				messages.Put{Key: "k"}, messages.Delete{Key: "a"},
				messages.Get{Key: "a"}, messages.Get{Key: "a", Serializable: true},
				messages.AddMember{ID: 9, PeerURL: "u"}, messages.RemoveMember{ID: 9},
			} {
				f.request(req).wantErr(t, messages.ErrStopped)
			}
			// Nothing more is applied, and Fatal is not called again.
			f.apply(putEntry(2, "a", "late"), putEntry(9, "gap", ""))
			f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: testState{}.snapshot(t, 50, nil)})
			f.noDelivery(t)
			f.noFatal(t)
			f.raftQuiet(t)
			f.snapQuiet(t)
		})
	}
}

func applyOf(entries ...*raftpb.Entry) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgStorageApply.Enum(), Entries: entries}
}

// (d) A linearizable read waits for its read index and for the state to
// reach it, then answers with the state as of then.
func TestActorLinearizableGet(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.wantDelivery(t, f.apply(putEntry(1, "k", "v1")))

	get := f.request(messages.Get{Key: "k"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	get.pending(t)
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 3})
	get.pending(t)
	f.wantDelivery(t, f.apply(putEntry(2, "k", "v2")))
	get.pending(t)
	f.wantDelivery(t, f.apply(putEntry(3, "k", "v3")))
	r := get.result(t)
	if r.Err != nil || !r.Found || string(r.Value) != "v3" || r.Index != 3 {
		t.Fatalf("answer = %+v, want v3 at index 3", r)
	}
	f.raftQuiet(t)
}

func TestActorReadIndexBatch(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.wantDelivery(t, f.apply(putEntry(1, "k", "v1"), putEntry(2, "j", "w")))
	present := f.request(messages.Get{Key: "k"})
	r1 := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	absent := f.request(messages.Get{Key: "nope"})
	r2 := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	failed := f.request(messages.Get{Key: "j"})
	r3 := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	if r1.ID == r2.ID || r2.ID == r3.ID || r1.ID == r3.ID {
		t.Fatalf("read ids not unique: %d %d %d", r1.ID, r2.ID, r3.ID)
	}

	f.system.Root.Send(f.pid, messages.ReadIndexFailed{IDs: []uint64{r3.ID}, Err: messages.ErrNoLeader})
	failed.wantErr(t, messages.ErrNoLeader)
	present.pending(t)
	absent.pending(t)

	// A read index the state already reached is served at once.
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{r1.ID, r2.ID}, Index: 2})
	if r := present.result(t); r.Err != nil || !r.Found || string(r.Value) != "v1" || r.Index != 2 {
		t.Fatalf("present key: %+v, want v1 at 2", r)
	}
	if r := absent.result(t); r.Err != nil || r.Found || r.Value != nil || r.Index != 2 {
		t.Fatalf("absent key: %+v, want not found at 2", r)
	}
	// Late news about settled reads changes nothing.
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{r3.ID}, Index: 1})
	f.system.Root.Send(f.pid, messages.ReadIndexFailed{IDs: []uint64{r1.ID}, Err: messages.ErrNoLeader})
	f.noFatal(t)
}

// (d) A serializable read answers from local state at once, even while a
// write to its key waits, and costs no read index.
func TestActorSerializableGet(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.get(t, "k", nil, 0)
	f.wantDelivery(t, f.apply(putEntry(1, "k", "v1")))
	w := f.request(messages.Put{Key: "k", Value: []byte("v2")})
	recv[messages.Propose](t, f.raft.got, "Propose")
	f.get(t, "k", str("v1"), 1)
	f.raftQuiet(t)
	w.pending(t)
}

// (e) Every SnapshotCount applied entries the db commits and the snapshotter
// is told to take a snapshot at its index, with the ConfState of the last
// applied conf change. A native snapshot carries no data: the db, streamed
// to a follower, is its state.
func TestActorCreatesSnapshots(t *testing.T) {
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.SnapshotCount = 3 }})
	f.wantDelivery(t, f.apply(confChangeEntry(t, 1, addNode(1, "http://a:2380", 0)), putEntry(2, "a", "1")))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	f.snapQuiet(t)

	f.wantDelivery(t, f.apply(putEntry(3, "b", "2")))
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 3, confState([]uint64{1}, nil),
		testState{members: map[uint64]string{1: "http://a:2380"}, data: map[string]string{"a": "1", "b": "2"}})

	f.wantDelivery(t, f.apply(putEntry(4, "a", "3")))
	f.wantDelivery(t, f.apply(normalEntry(5, encodeNative(apply.Command{Op: apply.OpDelete, Key: "b"}))))
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(confChangeEntry(t, 6, addNode(2, "http://b:2380", 0))))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 6, confState([]uint64{1, 2}, nil),
		testState{members: map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}, data: map[string]string{"a": "3"}})
	f.snapQuiet(t)
}

func TestActorSnapshotsDisabled(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	for i := uint64(1); i <= 5; i++ {
		f.wantDelivery(t, f.apply(putEntry(i, "k", "v")))
	}
	f.snapQuiet(t)
	select {
	case s := <-f.snapSent:
		t.Fatalf("a snapshot at %d was sent with snapshots disabled", s.index)
	default:
	}
}

// checkSnapshot checks a native CreateSnapshot: its index and ConfState, no
// inline data, the db committed at its index before it was sent, and the db
// a follower gets from the stream holds want and the same ConfState. Call
// it before applying anything more: the stream is of the last commit.
func (f *fixture) checkSnapshot(t *testing.T, got messages.CreateSnapshot, index uint64, cs *raftpb.ConfState, want testState) {
	t.Helper()
	if got.Index != index {
		t.Errorf("snapshot index %d, want %d", got.Index, index)
	}
	if !proto.Equal(got.ConfState, cs) {
		t.Errorf("snapshot ConfState %v, want %v", got.ConfState, cs)
	}
	if len(got.Data) != 0 {
		t.Errorf("native snapshot carries %d bytes of data, want none (its db goes on its own)", len(got.Data))
	}
	f.wantSnapSent(t, index)
	follower := f.copyDB(t, index)
	if !proto.Equal(follower.ConfState(), cs) {
		t.Errorf("the db's ConfState %v, want %v", follower.ConfState(), cs)
	}
	v, err := viewOf(follower.st)
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, fmt.Sprintf("db of the snapshot at %d", index), v, want)
}

// (f) A snapshot from the leader with its state inline (a leader of the
// previous layout) replaces the state and the member list, and applying
// goes on right after its index.
func TestActorRestoresSnapshot(t *testing.T) {
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.SnapshotCount = 4 }})
	f.wantDelivery(t, f.apply(putEntry(1, "old", "1"), confChangeEntry(t, 2, addNode(1, "http://a:2380", 0))))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	read := f.request(messages.Get{Key: "x"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 10})
	read.pending(t)

	members := map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}
	leader := testState{members: members, removed: []uint64{3}, data: map[string]string{"x": "1", "y": "2"}}
	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: leader.snapshot(t, 10, confState([]uint64{1, 2}, nil))})
	mr := recv[messages.MembersRestored](t, f.raft.got, "MembersRestored")
	if !maps.Equal(mr.Members, members) || !slices.Equal(mr.Removed, []uint64{3}) {
		t.Fatalf("MembersRestored %v removed %v, want %v removed [3]", mr.Members, mr.Removed, members)
	}
	// The read waiting for index 10 is served from the snapshot.
	if r := read.result(t); r.Err != nil || string(r.Value) != "1" || r.Index != 10 {
		t.Fatalf("read waiting for 10: %+v, want x=1 at 10", r)
	}
	f.get(t, "x", str("1"), 10)
	f.get(t, "y", str("2"), 10)
	f.get(t, "old", nil, 10)
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), members) || r.Index != 10 {
		t.Fatalf("members %v at %d, want %v at 10", r.Members, r.Index, members)
	}
	// The restore is committed at once: the db never holds the state of
	// before the snapshot with the snapshot's index, nor the reverse.
	if db := f.db(t); db.pending != 0 || db.committed != 10 {
		t.Fatalf("after the restore: %d entries uncommitted, committed at %d; want none, at 10", db.pending, db.committed)
	}

	f.wantDelivery(t, f.apply(putEntry(9, "x", "stale"), putEntry(10, "y", "stale"), putEntry(11, "z", "3")))
	f.get(t, "x", str("1"), 11)
	f.get(t, "y", str("2"), 11)
	f.get(t, "z", str("3"), 11)
	// The restore counts as a snapshot: the next one is due 4 entries on.
	f.snapQuiet(t)

	// A snapshot the state has passed is ignored, even one that does not decode.
	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: testState{data: map[string]string{"x": "older"}}.snapshot(t, 5, nil)})
	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: &raftpb.Snapshot{Data: []byte("junk"), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(11))}}})
	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: dbSnapshot(11, nil)}) // and one whose db never came
	f.get(t, "x", str("1"), 11)
	f.noFatal(t)
	f.raftQuiet(t)

	// Later snapshots carry the restored ConfState and removed ids.
	f.wantDelivery(t, f.apply(putEntry(12, "a", "1"), putEntry(13, "b", "2"), putEntry(14, "c", "3")))
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 14, confState([]uint64{1, 2}, nil),
		testState{members: members, removed: []uint64{3}, data: map[string]string{"x": "1", "y": "2", "z": "3", "a": "1", "b": "2", "c": "3"}})
}

// (g) A conf change entry is applied by the raft actor before raft hears it
// was applied, and the member list follows it.
func TestActorConfChange(t *testing.T) {
	const url = "http://d:2380"
	f := newFixture(t, fixtureOpts{})
	add := f.request(messages.AddMember{ID: 4, PeerURL: url})
	pcc := recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	if c := pcc.Change; c.GetType() != raftpb.ConfChangeAddNode || c.GetNodeId() != 4 || string(c.GetContext()) != url || c.GetId() != pcc.ID {
		t.Fatalf("proposed %v with id %d, want AddNode 4 %s with the proposal's id", c, pcc.ID, url)
	}
	add.pending(t)

	resps := f.apply(confChangeEntry(t, 1, addNode(4, url, pcc.ID)))
	acc := recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	if cc, ok := acc.Change.AsV1(); acc.Index != 1 || acc.PeerURL != url || !ok || cc.GetNodeId() != 4 || cc.GetType() != raftpb.ConfChangeAddNode {
		t.Fatalf("ApplyConfChange %+v, want index 1, AddNode 4, %s", acc, url)
	}
	d := f.wantDelivery(t, resps)
	if !slices.Contains(d.confChanges, 1) {
		t.Fatalf("Deliver called before raft applied the conf change at 1 (raft had answered %v)", d.confChanges)
	}
	if d.members[4] != url {
		t.Fatalf("members when Deliver was called: %v, want 4 at %s", d.members, url)
	}
	if r := add.result(t); r.Err != nil || r.Index != 1 {
		t.Fatalf("AddMember answer %+v, want success at 1", r)
	}
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), map[uint64]string{4: url}) || r.Index != 1 {
		t.Fatalf("members %v at %d, want 4 at 1", r.Members, r.Index)
	}

	f.request(messages.AddMember{ID: 4, PeerURL: "http://other:2380"}).wantErr(t, messages.ErrMemberExists)
	f.request(messages.RemoveMember{ID: 7}).wantErr(t, messages.ErrUnknownMember)
	f.raftQuiet(t)

	remove := f.request(messages.RemoveMember{ID: 4})
	pcc = recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	if c := pcc.Change; c.GetType() != raftpb.ConfChangeRemoveNode || c.GetNodeId() != 4 || c.GetId() != pcc.ID {
		t.Fatalf("proposed %v with id %d, want RemoveNode 4 with the proposal's id", c, pcc.ID)
	}
	resps = f.apply(confChangeEntry(t, 2, &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(4)), Id: new(pcc.ID)}))
	if acc := recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange"); acc.Index != 2 || acc.PeerURL != "" {
		t.Fatalf("ApplyConfChange %+v, want index 2 and no URL", acc)
	}
	if d := f.wantDelivery(t, resps); !slices.Contains(d.confChanges, 2) {
		t.Fatalf("Deliver called before raft applied the conf change at 2 (raft had answered %v)", d.confChanges)
	} else if !maps.Equal(d.removed, map[uint64]bool{4: true}) {
		t.Fatalf("removed ids %v after the removal, want 4", d.removed)
	}
	if r := remove.result(t); r.Err != nil || r.Index != 2 {
		t.Fatalf("RemoveMember answer %+v, want success at 2", r)
	}
	if r := f.sync(t); len(r.Members) != 0 {
		t.Fatalf("members %v after the removal, want none", r.Members)
	}

	// raft's own ConfChangeV2 entries (leaving a joint config) reach raft too.
	resps = f.apply(confChangeEntry(t, 3, &raftpb.ConfChangeV2{}))
	if acc := recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange"); acc.Index != 3 {
		t.Fatalf("ApplyConfChange %+v, want index 3", acc)
	}
	if d := f.wantDelivery(t, resps); !slices.Contains(d.confChanges, 3) || d.applied != 3 {
		t.Fatalf("Deliver at applied %d with conf changes %v answered, want 3 and 3", d.applied, d.confChanges)
	}
	f.noFatal(t)
}

// (h) An actor over a State made from a snapshot of the previous layout (a
// data dir migrated by OpenState) starts from its state, members and
// ConfState.
func TestNewActorFromSnapshot(t *testing.T) {
	members := map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}
	f := newFixture(t, fixtureOpts{
		snapshot: testState{members: members, data: map[string]string{"a": "1"}}.snapshot(t, 7, confState([]uint64{1, 2}, nil)),
		cfg:      func(c *Config) { c.SnapshotCount = 1 },
	})
	// What the node hands raft before the actor applies anything.
	var got map[uint64]string
	f.inspect(t, func(a *Actor) { got = a.cfg.State.Members() })
	if !maps.Equal(got, members) {
		t.Fatalf("State.Members() = %v, want %v", got, members)
	}
	f.get(t, "a", str("1"), 7)
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), members) || r.Index != 7 {
		t.Fatalf("members %v at %d, want %v at 7", r.Members, r.Index, members)
	}
	f.wantDelivery(t, f.apply(putEntry(7, "a", "stale")))
	f.get(t, "a", str("1"), 7)
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(putEntry(8, "b", "2")))
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 8, confState([]uint64{1, 2}, nil),
		testState{members: members, data: map[string]string{"a": "1", "b": "2"}})
}

// Snapshot data OpenState cannot read, or that is not of the member's
// format, is refused, and the db it began is not left behind: the member
// must not start from a part of its state.
func TestOpenStateRefusesBadSnapshot(t *testing.T) {
	valid := legacysnap.Encode(map[uint64]string{1: "u"}, nil, map[string]string{"k": "v"})
	for _, c := range []struct {
		name   string
		format apply.Format
		data   []byte
		want   error
	}{
		{"garbage", apply.FormatNative, []byte("garbage"), store.ErrBadSnapshot},
		{"truncated", apply.FormatNative, valid[:len(valid)-1], store.ErrBadSnapshot},
		{"trailing bytes", apply.FormatNative, append(slices.Clone(valid), 1), store.ErrBadSnapshot},
		{"raftexample snapshot in native format", apply.FormatNative, []byte(`{"a":"1"}`), store.ErrBadSnapshot},
		{"native snapshot in raftexample format", apply.FormatRaftexample, valid, store.ErrBadSnapshot},
		{"bad JSON", apply.FormatRaftexample, []byte(`{"a":`), store.ErrBadSnapshot},
		{"unknown format", 5, valid, apply.ErrUnknownFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := &raftpb.Snapshot{Data: c.data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3))}}
			st, err := OpenState(testStateConfig(dir, c.format, snap))
			if !errors.Is(err, c.want) || st != nil {
				if st != nil {
					_ = st.Close()
				}
				t.Fatalf("OpenState = %v, %v; want nil and %v", st, err, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused snapshot left a db behind (%v)", err)
			}
		})
	}
}

// raft's empty snapshot (index 0) holds no state to restore.
func TestNewActorEmptySnapshot(t *testing.T) {
	st, err := OpenState(testStateConfig(t.TempDir(), apply.FormatNative, &raftpb.Snapshot{}))
	if err != nil {
		t.Fatalf("OpenState: %v", err)
	}
	defer st.Close()
	a, err := NewActor(wired(t, Config{State: st}))
	if err != nil {
		t.Fatalf("NewActor: %v", err)
	}
	if len(a.st.Members()) != 0 || a.applied != 0 || a.st.Keys() != 0 {
		t.Fatalf("restored %v and %d keys at %d from an empty snapshot", a.st.Members(), a.st.Keys(), a.applied)
	}
}

// wired fills the actor's required wiring for tests that only construct it,
// with an empty native State unless cfg has one.
func wired(t *testing.T, cfg Config) Config {
	t.Helper()
	cfg.Raft = actor.NewPID("nonhost", "raft")
	cfg.Deliver = func([]*raftpb.Message) {}
	if cfg.State == nil {
		cfg.State = openTestState(t, apply.FormatNative)
	}
	return cfg
}

func TestNewActorNeedsWiring(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"nothing", Config{}},
		{"no state", func() Config { c := wired(t, Config{}); c.State = nil; return c }()},
		{"no raft actor", func() Config { c := wired(t, Config{}); c.Raft = nil; return c }()},
		{"no Deliver", func() Config { c := wired(t, Config{}); c.Deliver = nil; return c }()},
	} {
		if _, err := NewActor(c.cfg); err == nil {
			t.Errorf("NewActor with %s succeeded", c.name)
		}
	}
	if _, err := NewActor(wired(t, Config{})); err != nil {
		t.Fatalf("NewActor with its wiring: %v", err)
	}
	if _, err := NewActor(wired(t, Config{Format: 5})); !errors.Is(err, apply.ErrUnknownFormat) {
		t.Fatalf("NewActor with an unknown format: %v, want ErrUnknownFormat", err)
	}
}

// (i) Stopping the actor answers every waiting request.
func TestActorStopAnswersWaiting(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	put := f.request(messages.Put{Key: "k", Value: []byte("v")})
	recv[messages.Propose](t, f.raft.got, "Propose")
	add := f.request(messages.AddMember{ID: 3, PeerURL: "u"})
	recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	read := f.request(messages.Get{Key: "k"})
	recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	ready := f.request(messages.Get{Key: "k"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 50})
	for _, w := range []*call{put, add, read, ready} {
		w.pending(t)
	}
	f.stop(t)
	for _, w := range []*call{put, add, read, ready} {
		w.wantErr(t, messages.ErrStopped)
	}
}

// Requests whose client gave up are answered ErrTimeout by the periodic sweep
// and forgotten: a late apply settles nothing.
func TestActorExpiresWaiting(t *testing.T) {
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.RequestTimeout = time.Nanosecond }})
	put := f.request(messages.Put{Key: "k", Value: []byte("v")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	read := f.request(messages.Get{Key: "k"})
	recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	ready := f.request(messages.Get{Key: "k"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 50})
	for _, w := range []*call{put, read, ready} {
		w.wantErr(t, messages.ErrTimeout)
	}
	f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
	f.get(t, "k", str("v"), 1)
	f.noFatal(t)
}

// A snapshot without a ConfState (raft leaves it unset when empty) restores
// as an empty one, by either path.
func TestActorSnapshotWithoutConfState(t *testing.T) {
	members := map[uint64]string{1: "http://a:2380"}
	snap := testState{members: members, data: map[string]string{"k": "v"}}.snapshot(t, 3, nil)
	want := testState{members: members, data: map[string]string{"k": "v", "j": "w"}}
	t.Run("restore", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.SnapshotCount = 1 }})
		f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: snap})
		if mr := recv[messages.MembersRestored](t, f.raft.got, "MembersRestored"); !maps.Equal(mr.Members, members) {
			t.Fatalf("MembersRestored %v, want %v", mr.Members, members)
		}
		f.wantDelivery(t, f.apply(putEntry(4, "j", "w")))
		f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 4, confState(nil, nil), want)
		f.noFatal(t)
	})
	t.Run("initial", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{snapshot: snap, cfg: func(c *Config) { c.SnapshotCount = 1 }})
		f.wantDelivery(t, f.apply(putEntry(4, "j", "w")))
		f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 4, confState(nil, nil), want)
	})
}

// heldFormat holds every snapshot encoding until release is closed, to show
// what the kv actor does meanwhile.
type heldFormat struct {
	apply.Codec
	entered chan struct{}
	release chan struct{}
}

func (h heldFormat) SnapshotData(tx *bolt.Tx) ([]byte, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Codec.SnapshotData(tx)
}

// raftexample's snapshots carry the whole map, encoded off the kv actor from
// a read transaction of the db at the snapshot's index: applies (and the
// db's commits) go on while it is encoded, the snapshot holds the state of
// its own index whatever was written and committed since, and no second
// snapshot starts until the first is done (the next one covers everything
// applied meanwhile).
func TestActorAppliesWhileEncoding(t *testing.T) {
	held := heldFormat{entered: make(chan struct{}, 4), release: make(chan struct{})}
	f := newFixture(t, fixtureOpts{
		cfg: func(c *Config) {
			c.Format = apply.FormatRaftexample
			c.SnapshotCount = 2
		},
		codec: func(c apply.Codec) apply.Codec { held.Codec = c; return held },
	})
	release := sync.OnceFunc(func() { close(held.release) })
	t.Cleanup(release) // before the fixture's shutdown, which a held encoder would block

	f.wantDelivery(t, f.apply(gobEntry(t, 1, "a", "1"), gobEntry(t, 2, "b", "1")))
	f.wantSnapSent(t, 2)
	select {
	case <-held.entered:
	case <-time.After(waitFor):
		t.Fatal("the snapshot at 2 was not handed to the encoder")
	}
	// Snapshots fall due at 4 and 6 while the one at 2 is held.
	for i := uint64(3); i <= 7; i++ {
		f.wantDelivery(t, f.apply(gobEntry(t, i, "a", strconv.FormatUint(i, 10))))
	}
	if r := f.request(messages.Get{Key: "a", Serializable: true}).result(t); string(r.Value) != "7" {
		t.Fatalf("read during the encoding: %+v, want a=7", r)
	}
	// The db commits while the encoder holds its read transaction.
	f.commitNow(t)
	if db := f.db(t); db.pending != 0 || db.committed != 7 {
		t.Fatalf("a commit during the encoding left %d entries uncommitted, committed at %d; want none, at 7", db.pending, db.committed)
	}
	if !f.encoding(t) {
		t.Fatal("the encoder is done before it was released")
	}
	f.quiet(t, f.snap, "the snapshotter, while the encoder is held")
	select {
	case s := <-f.snapSent:
		t.Fatalf("a snapshot at %d started while the one at 2 was encoding", s.index)
	default:
	}

	release()
	snap := recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot")
	if want := `{"a":"1","b":"1"}`; snap.Index != 2 || string(snap.Data) != want {
		t.Fatalf("snapshot at %d = %s, want %s at 2", snap.Index, snap.Data, want)
	}
	f.wantSnapSent(t, 7)
	snap = recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot")
	if want := `{"a":"7","b":"1"}`; snap.Index != 7 || string(snap.Data) != want {
		t.Fatalf("snapshot at %d = %s, want %s at 7", snap.Index, snap.Data, want)
	}
	f.snapQuiet(t)
}
