package persistence

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// fakeLog records every call in the shared recorder as it starts. A call
// whose operation has a gate blocks until the test feeds the gate one value,
// after announcing itself on entered.
type fakeLog struct {
	rec     *recorder
	entered chan string

	mu     sync.Mutex
	gates  map[string]chan struct{}
	errs   map[string]error
	closes int
}

func newFakeLog(rec *recorder) *fakeLog {
	return &fakeLog{
		rec:     rec,
		entered: make(chan string, 64),
		gates:   make(map[string]chan struct{}),
		errs:    make(map[string]error),
	}
}

// gate makes calls to op block; each value sent on the result lets one go.
func (f *fakeLog) gate(op string) chan<- struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := make(chan struct{})
	f.gates[op] = g
	return g
}

func (f *fakeLog) failOn(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[op] = err
}

func (f *fakeLog) step(op, detail string) error {
	f.rec.add("%s %s", op, detail)
	f.mu.Lock()
	g, err := f.gates[op], f.errs[op]
	f.mu.Unlock()
	if g != nil {
		f.entered <- op
		<-g
	}
	return err
}

func (f *fakeLog) Save(st *raftpb.HardState, es []*raftpb.Entry) error {
	return f.step("save", fmt.Sprintf("hs=%s ents=[%s]", describeHS(st), indexes(es)))
}

func (f *fakeLog) SaveSnapshot(s *walpb.Snapshot) error {
	return f.step("savesnapshot", fmt.Sprintf("%d term=%d", s.GetIndex(), s.GetTerm()))
}

func (f *fakeLog) ReleaseLockTo(index uint64) error {
	return f.step("release", fmt.Sprint(index))
}

func (f *fakeLog) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closes++
	return nil
}

func (f *fakeLog) closeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closes
}

// delivered is what the harness's Deliver passes on to the sink actor.
type delivered struct{ names string }

// walHarness runs a wal actor on a fakeLog. Its sink actor stands in for the
// kv actor and also receives every delivery, so the sink's order is the order
// in which the wal actor sent RestoreSnapshot and delivered responses.
type walHarness struct {
	sys     *actor.ActorSystem
	pid     *actor.PID
	log     *fakeLog
	rec     *recorder // calls on the log and deliveries, in the wal actor's order
	sinkRec *recorder // what the sink received, in its mailbox order
	storage *raft.MemoryStorage
	deliver chan string
	fatals  chan messages.Fatal
}

// startWAL starts a wal actor; snapshotter, if not nil, builds the behaviour
// of a stand-in snapshotter actor.
func startWAL(t *testing.T, snapshotter func(h *walHarness) actor.ReceiveFunc) *walHarness {
	t.Helper()
	rec := &recorder{}
	h := &walHarness{
		sys:     newSystem(t),
		log:     newFakeLog(rec),
		rec:     rec,
		sinkRec: &recorder{},
		storage: raft.NewMemoryStorage(),
		deliver: make(chan string, 64),
		fatals:  make(chan messages.Fatal, 8),
	}
	sink := h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case messages.RestoreSnapshot:
			first, _ := h.storage.FirstIndex()
			h.sinkRec.add("restore %d first=%d", m.Snapshot.GetMetadata().GetIndex(), first)
		case delivered:
			h.sinkRec.add("deliver %s", m.names)
		}
	}))
	var snapPID *actor.PID
	if snapshotter != nil {
		snapPID = h.sys.Root.Spawn(actor.PropsFromFunc(snapshotter(h)))
	}
	h.pid = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return NewWALActor(WALConfig{
			Log:         h.log,
			Storage:     h.storage,
			Snapshotter: snapPID,
			KV:          sink,
			Deliver: func(msgs []*raftpb.Message) {
				var names []string
				for _, m := range msgs {
					names = append(names, fmt.Sprintf("r%d", m.GetIndex()))
				}
				joined := strings.Join(names, " ")
				// Taken on the wal actor: what Storage held when raft was told.
				last, _ := h.storage.LastIndex()
				h.rec.add("deliver %s last=%d", joined, last)
				h.sys.Root.Send(sink, delivered{names: joined})
				h.deliver <- joined
			},
			Fatal: func(f messages.Fatal) { h.fatals <- f },
		})
	}))
	return h
}

// stopAndCheckClosed stops the wal actor and checks it closed its log once.
func (h *walHarness) stopAndCheckClosed(t *testing.T) {
	t.Helper()
	stop(t, h.sys, h.pid)
	if n := h.log.closeCount(); n != 1 {
		t.Errorf("log closed %d times, want 1", n)
	}
}

// appendMsg builds a MsgStorageAppend whose responses are named r<id>.
func appendMsg(hs *raftpb.HardState, es []*raftpb.Entry, respIDs ...uint64) *raftpb.Message {
	m := &raftpb.Message{
		Type:    raftpb.MsgStorageAppend.Enum(),
		To:      new(raft.LocalAppendThread),
		From:    new(uint64(1)),
		Entries: es,
	}
	if hs != nil {
		m.Term, m.Vote, m.Commit = new(hs.GetTerm()), new(hs.GetVote()), new(hs.GetCommit())
	}
	for _, id := range respIDs {
		m.Responses = append(m.Responses, &raftpb.Message{
			Type:  raftpb.MsgStorageAppendResp.Enum(),
			To:    new(uint64(1)),
			From:  new(raft.LocalAppendThread),
			Index: new(id),
		})
	}
	return m
}

func noValue[T any](t *testing.T, what string, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v", what, v)
	default:
	}
}

func sameEvents(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestWALActorDeliversOnlyAfterSaveReturns(t *testing.T) {
	h := startWAL(t, nil)
	release := h.log.gate("save")

	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 2, 1), 1, 2))
	if op := recv(t, "Save to start", h.log.entered); op != "save" {
		t.Fatalf("first call = %s, want save", op)
	}
	// Save is blocked inside the actor: anything delivered or stored by now
	// was done before the data was durable.
	noValue(t, "response delivered while Save was blocked", h.deliver)
	if last, _ := h.storage.LastIndex(); last != 0 {
		t.Fatalf("Storage holds index %d before Save returned", last)
	}
	release <- struct{}{}

	if got := recv(t, "responses", h.deliver); got != "r1 r2" {
		t.Fatalf("delivered %q, want %q", got, "r1 r2")
	}
	h.stopAndCheckClosed(t)
	sameEvents(t, "calls", h.rec.all(), []string{
		"save hs=1/1/0 ents=[1 2]",
		"deliver r1 r2 last=2",
	})
}

func TestWALActorGroupsQueuedAppendsIntoOneSave(t *testing.T) {
	h := startWAL(t, nil)
	release := h.log.gate("save")

	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 1, 1), 1))
	recv(t, "first Save", h.log.entered)

	// Queued while the first Save blocks. Hard states: 2/1/1, none, 3/2/2,
	// none, none; the group must carry the last one set.
	const n = 5
	hss := []*raftpb.HardState{newHS(2, 1, 1), nil, newHS(3, 2, 2), nil, nil}
	for i := range uint64(n) {
		h.sys.Root.Send(h.pid, appendMsg(hss[i], entRange(i+2, i+2, 1), i+2))
	}
	release <- struct{}{}
	if got := recv(t, "first responses", h.deliver); got != "r1" {
		t.Fatalf("delivered %q, want r1", got)
	}
	recv(t, "second Save", h.log.entered)
	noValue(t, "responses delivered while the group Save was blocked", h.deliver)
	release <- struct{}{}
	if got := recv(t, "group responses", h.deliver); got != "r2 r3 r4 r5 r6" {
		t.Fatalf("delivered %q, want the five in order", got)
	}
	h.stopAndCheckClosed(t)

	sameEvents(t, "calls", h.rec.all(), []string{
		"save hs=1/1/0 ents=[1]",
		"deliver r1 last=1",
		"save hs=3/2/2 ents=[2 3 4 5 6]",
		"deliver r2 r3 r4 r5 r6 last=6",
	})
	st, _, _ := h.storage.InitialState()
	if describeHS(st) != "3/2/2" {
		t.Errorf("Storage hard state = %s, want 3/2/2", describeHS(st))
	}
}

// sync waits until the wal actor has handled everything sent before: it
// answers a RecordSnapshot request even after a failure.
func (h *walHarness) sync(t *testing.T) messages.SnapshotRecorded {
	t.Helper()
	res, err := h.sys.Root.RequestFuture(h.pid, messages.RecordSnapshot{
		Snapshot: &walpb.Snapshot{Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{}},
	}, waitTimeout).Result()
	if err != nil {
		t.Fatalf("RecordSnapshot: %v", err)
	}
	return res.(messages.SnapshotRecorded)
}

func TestWALActorSaveErrorIsFatalOnceAndSilences(t *testing.T) {
	h := startWAL(t, nil)
	boom := errors.New("disk on fire")
	h.log.failOn("save", boom)

	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 2, 1), 1))
	f := recv(t, "Fatal", h.fatals)
	if f.Component != "wal" || !errors.Is(f, boom) {
		t.Fatalf("Fatal = %v, want component wal wrapping %v", f, boom)
	}
	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(3, 3, 1), 2))
	h.sys.Root.Send(h.pid, appendMsg(nil, entRange(4, 4, 1), 3))
	if got := h.sync(t); !errors.Is(got.Err, ErrFailed) {
		t.Fatalf("RecordSnapshot after failure answered %v, want ErrFailed", got.Err)
	}
	h.stopAndCheckClosed(t)

	noValue(t, "response delivered after a failed Save", h.deliver)
	noValue(t, "second Fatal", h.fatals)
	sameEvents(t, "calls", h.rec.all(), []string{"save hs=1/1/0 ents=[1 2]"})
	if last, _ := h.storage.LastIndex(); last != 0 {
		t.Errorf("Storage holds index %d after a failed Save", last)
	}
}

func leaderSnapshot(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte("state"),
		Metadata: &raftpb.SnapshotMetadata{
			Index: new(index), Term: new(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
}

// answerSnapshotFile is a stand-in snapshotter that records each
// SaveSnapshotFile and answers it.
func answerSnapshotFile(h *walHarness) actor.ReceiveFunc {
	return func(c actor.Context) {
		if m, ok := c.Message().(messages.SaveSnapshotFile); ok {
			h.rec.add("snapfile %d", m.Snapshot.GetMetadata().GetIndex())
			c.Respond(messages.SnapshotFileSaved{})
		}
	}
}

func TestWALActorOrdersReceivedSnapshot(t *testing.T) {
	h := startWAL(t, answerSnapshotFile)

	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 3, 1), 1))
	snapMsg := appendMsg(newHS(2, 0, 10), nil, 2)
	snapMsg.Snapshot = leaderSnapshot(10, 2)
	h.sys.Root.Send(h.pid, snapMsg)
	recv(t, "r1", h.deliver)
	recv(t, "r2", h.deliver)
	waitFor(t, "sink to see the last delivery", func() bool { return h.sinkRec.has("deliver r2") })
	h.stopAndCheckClosed(t)

	sameEvents(t, "calls", h.rec.all(), []string{
		"save hs=1/1/0 ents=[1 2 3]", // the buffer is flushed before the snapshot
		"deliver r1 last=3",
		"snapfile 10", // .snap file before the WAL record
		"savesnapshot 10 term=2",
		"save hs=2/0/10 ents=[]",
		"release 10",
		"deliver r2 last=10",
	})
	sameEvents(t, "sink", h.sinkRec.all(), []string{
		"deliver r1",
		"restore 10 first=11", // restore reaches kv before the responses
		"deliver r2",
	})
}

func TestWALActorRecordsSnapshotAfterBufferedAppends(t *testing.T) {
	h := startWAL(t, nil)
	saves := h.log.gate("save")
	saveSnap := h.log.gate("savesnapshot")
	releases := h.log.gate("release")
	answers := make(chan messages.SnapshotRecorded, 4)
	requester := h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(messages.SnapshotRecorded); ok {
			h.rec.add("recorded %d err=%v", m.Index, m.Err)
			answers <- m
		}
	}))

	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 2, 1), 1))
	recv(t, "first Save", h.log.entered)
	// While that Save blocks, queue an append and then the request: the
	// append's flush marker lands behind the request, so only the request's
	// own flush can write it first.
	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 2), entRange(3, 3, 1), 2))
	h.sys.Root.RequestWithCustomSender(h.pid, messages.RecordSnapshot{
		Snapshot: &walpb.Snapshot{Index: new(uint64(3)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}},
	}, requester)
	saves <- struct{}{}

	for _, op := range []string{"save", "savesnapshot", "release"} {
		if got := recv(t, op, h.log.entered); got != op {
			t.Fatalf("next call = %s, want %s", got, op)
		}
		noValue(t, "SnapshotRecorded before "+op+" returned", answers)
		map[string]chan<- struct{}{"save": saves, "savesnapshot": saveSnap, "release": releases}[op] <- struct{}{}
	}
	if got := recv(t, "SnapshotRecorded", answers); got.Index != 3 || got.Err != nil {
		t.Fatalf("SnapshotRecorded = %+v, want index 3 and no error", got)
	}
	h.stopAndCheckClosed(t)

	sameEvents(t, "calls", h.rec.all(), []string{
		"save hs=1/1/0 ents=[1 2]",
		"deliver r1 last=2",
		"save hs=1/1/2 ents=[3]",
		"deliver r2 last=3",
		"savesnapshot 3 term=1",
		"release 3",
		"recorded 3 err=<nil>",
	})
}

func TestWALActorSnapshotFileFailureIsFatal(t *testing.T) {
	boom := errors.New("snap dir gone")
	h := startWAL(t, func(*walHarness) actor.ReceiveFunc {
		return func(c actor.Context) {
			if _, ok := c.Message().(messages.SaveSnapshotFile); ok {
				c.Respond(messages.SnapshotFileSaved{Err: boom})
			}
		}
	})
	m := appendMsg(newHS(2, 0, 10), nil, 1)
	m.Snapshot = leaderSnapshot(10, 2)
	h.sys.Root.Send(h.pid, m)
	if f := recv(t, "Fatal", h.fatals); !errors.Is(f, boom) {
		t.Fatalf("Fatal = %v, want it to wrap %v", f, boom)
	}
	h.sync(t)
	h.stopAndCheckClosed(t)

	noValue(t, "response delivered after a failed snapshot write", h.deliver)
	if len(h.rec.all()) != 0 {
		t.Fatalf("WAL written after the .snap file failed: %q", h.rec.all())
	}
	if len(h.sinkRec.all()) != 0 {
		t.Fatalf("kv told to restore a snapshot that was not saved: %q", h.sinkRec.all())
	}
}

func TestWALActorClosesLogOnceOnStop(t *testing.T) {
	h := startWAL(t, nil)
	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(1, 1, 1), 1))
	recv(t, "response", h.deliver)
	// Stopping and Stopped both reach the actor; the log is closed once.
	h.stopAndCheckClosed(t)

	// Closing again, as a restarted stop sequence would, stays a no-op.
	log := newFakeLog(&recorder{})
	a := NewWALActor(WALConfig{Log: log, Storage: raft.NewMemoryStorage()}).(*walActor)
	a.close()
	a.close()
	if n := log.closeCount(); n != 1 {
		t.Fatalf("log closed %d times, want 1", n)
	}
}

func TestWALActorTurnsStoragePanicIntoFatal(t *testing.T) {
	h := startWAL(t, nil)
	// Entries that leave a gap after the log make MemoryStorage panic.
	h.sys.Root.Send(h.pid, appendMsg(newHS(1, 1, 0), entRange(5, 6, 1), 1))
	if f := recv(t, "Fatal", h.fatals); f.Component != "wal" || !errors.Is(f, errPanicked) {
		t.Fatalf("Fatal = %v, want the recovered panic", f)
	}
	if got := h.sync(t); !errors.Is(got.Err, ErrFailed) {
		t.Fatalf("after the panic RecordSnapshot answered %v, want ErrFailed", got.Err)
	}
	h.stopAndCheckClosed(t)
	noValue(t, "response delivered after the panic", h.deliver)
}
