package actors

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// fakeTransport records what the raft actor sends to the network.
type fakeTransport struct {
	mu      sync.Mutex
	sent    []*raftpb.Message
	peers   map[uint64]string // last URL given to AddPeer
	removed map[uint64]bool   // ids given to RemovePeer
	down    map[uint64]bool   // peers ActiveSince reports as not connected
}

func (t *fakeTransport) setDown(id uint64, down bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down == nil {
		t.down = make(map[uint64]bool)
	}
	t.down[id] = down
}

func (t *fakeTransport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	t.sent = append(t.sent, msgs...)
	t.mu.Unlock()
}
func (t *fakeTransport) AddPeer(id uint64, u string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.peers == nil {
		t.peers = make(map[uint64]string)
	}
	t.peers[id] = u
}

func (t *fakeTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, id)
	if t.removed == nil {
		t.removed = make(map[uint64]bool)
	}
	t.removed[id] = true
}

func (t *fakeTransport) wasRemoved(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removed[id]
}

func (t *fakeTransport) Close() error { return nil }

// ActiveSince counts every peer it was given and not set down as up since
// the epoch.
func (t *fakeTransport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[id]; ok && !t.down[id] {
		return time.Unix(1, 0)
	}
	return time.Time{}
}

func (t *fakeTransport) peerURL(id uint64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.peers[id]
	return u, ok
}

func (t *fakeTransport) messages() []*raftpb.Message {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*raftpb.Message(nil), t.sent...)
}

// storageProbe plays the wal actor (or the kv actor): it records each
// message and, like the real one, makes the write and releases responses.
type storageProbe struct {
	storage *raft.MemoryStorage
	raft    *atomic.Pointer[actor.PID] // set once the raft actor is spawned
	got     chan *raftpb.Message
	other   chan any // what else it gets (the kv actor's ProposalFailed)
	// leaders gets the kv actor's LeaderChanged, kept out of other: they
	// come with every election.
	leaders chan messages.LeaderChanged
}

func (p *storageProbe) receive(ctx actor.Context) {
	if lc, ok := ctx.Message().(messages.LeaderChanged); ok {
		select {
		case p.leaders <- lc: // a nil channel takes nothing
		default:
		}
		return
	}
	m, ok := ctx.Message().(*raftpb.Message)
	if !ok {
		if p.other != nil {
			switch ctx.Message().(type) {
			case *actor.Started, *actor.Stopping, *actor.Stopped:
			default:
				p.other <- ctx.Message()
			}
		}
		return
	}
	if m.GetType() == raftpb.MsgStorageAppend {
		if m.GetTerm() != 0 {
			_ = p.storage.SetHardState(&raftpb.HardState{Term: new(m.GetTerm()), Vote: new(m.GetVote()), Commit: new(m.GetCommit())})
		}
		_ = p.storage.Append(m.GetEntries())
	}
	p.got <- m
	for _, r := range m.GetResponses() {
		ctx.Send(p.raft.Load(), r)
	}
}

type raftRig struct {
	system  *actor.ActorSystem
	raft    *actor.PID
	pid     atomic.Pointer[actor.PID]
	wal     chan *raftpb.Message
	kv      chan *raftpb.Message
	kvOther chan any
	leaders chan messages.LeaderChanged // what the kv actor is told of leaders
	net     *fakeTransport
	gate    *actortest.Gate
}

func newRaftRig(t *testing.T, voters ...uint64) *raftRig {
	t.Helper()
	return newRaftRigWith(t, nil, voters...)
}

// newRaftRigWith is newRaftRig with the raft actor's config changed by tune.
func newRaftRigWith(t *testing.T, tune func(*RaftConfig), voters ...uint64) *raftRig {
	t.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	storage := raft.NewMemoryStorage()
	rig := &raftRig{
		system:  system,
		wal:     make(chan *raftpb.Message, 1000),
		kv:      make(chan *raftpb.Message, 1000),
		kvOther: make(chan any, 100),
		leaders: make(chan messages.LeaderChanged, 100),
		net:     &fakeTransport{},
		gate:    &actortest.Gate{},
	}
	walProbe := &storageProbe{storage: storage, raft: &rig.pid, got: rig.wal}
	kvProbe := &storageProbe{storage: storage, raft: &rig.pid, got: rig.kv, other: rig.kvOther, leaders: rig.leaders}
	walPID := system.Root.Spawn(actor.PropsFromFunc(walProbe.receive))
	kvPID := system.Root.Spawn(actor.PropsFromFunc(kvProbe.receive))
	var peers []raft.Peer
	members := make(map[uint64]string)
	for _, id := range voters {
		peers = append(peers, raft.Peer{ID: id})
		members[id] = ""
	}
	cfg := RaftConfig{
		ID:            1,
		Storage:       storage,
		Bootstrap:     peers,
		Members:       members,
		WAL:           walPID,
		KV:            kvPID,
		Transport:     rig.net,
		TickInterval:  time.Millisecond,
		ElectionTick:  10,
		HeartbeatTick: 1,
	}
	if tune != nil {
		tune(&cfg)
	}
	r, err := NewRaft(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The probes answer the raft actor from its first message on, so its
	// PID must be known before it runs.
	rig.pid.Store(system.NewLocalPID("raft"))
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return r }, actor.WithDispatcher(rig.gate)), "raft")
	if err != nil {
		t.Fatal(err)
	}
	rig.raft = pid
	t.Cleanup(func() { _ = system.Root.StopFuture(rig.raft).Wait() })
	return rig
}

func (rig *raftRig) status(t *testing.T) messages.Status {
	t.Helper()
	res, err := rig.system.Root.RequestFuture(rig.raft, messages.StatusRequest{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res.(messages.Status)
}

// next returns the next message from ch, failing the test after a while.
func next(t *testing.T, ch chan *raftpb.Message, what string) *raftpb.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		return nil
	}
}

// Storage writes go to the wal actor, committed entries to the kv actor, and
// nothing local ever reaches the network.
func TestRaftRoutesReadyFragments(t *testing.T) {
	rig := newRaftRig(t, 1)
	// A lone voter campaigns at once: its vote and log go to the WAL first.
	first := next(t, rig.wal, "MsgStorageAppend")
	if first.GetType() != raftpb.MsgStorageAppend || first.GetTo() != raft.LocalAppendThread {
		t.Fatalf("wal actor got %v to %x", first.GetType(), first.GetTo())
	}
	apply := next(t, rig.kv, "MsgStorageApply")
	if apply.GetType() != raftpb.MsgStorageApply || apply.GetTo() != raft.LocalApplyThread {
		t.Fatalf("kv actor got %v to %x", apply.GetType(), apply.GetTo())
	}
	if len(apply.GetEntries()) == 0 {
		t.Fatal("MsgStorageApply without entries")
	}
	for _, m := range rig.net.messages() {
		t.Errorf("a lone member sent %v to %x over the network", m.GetType(), m.GetTo())
	}
}

func TestRaftSendsPeerMessagesToTransport(t *testing.T) {
	rig := newRaftRig(t, 1, 2)
	// With a silent peer, member 1 campaigns after its election timeout and
	// asks member 2 for a (pre-)vote over the network.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var votes int
		for _, m := range rig.net.messages() {
			if m.GetTo() != 2 {
				t.Fatalf("network message to %x, want only to 2", m.GetTo())
			}
			if m.GetType() == raftpb.MsgPreVote {
				votes++
			}
		}
		if votes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no MsgPreVote reached the transport")
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	for _, ch := range []chan *raftpb.Message{rig.wal, rig.kv} {
		for len(ch) > 0 {
			if m := <-ch; m.GetTo() != raft.LocalAppendThread && m.GetTo() != raft.LocalApplyThread {
				t.Fatalf("storage actor got a network message %v", m.GetType())
			}
		}
	}
}

// Proposals queued while the actor is busy all go into one Ready: one
// MsgStorageAppend, hence one WAL write and one fsync.
func TestRaftBatchesQueuedProposalsIntoOneAppend(t *testing.T) {
	rig := newRaftRig(t, 1)
	// Wait for leadership and an idle log: all appended entries applied.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := rig.status(t)
		if st.RaftState == "StateLeader" && st.Applied == st.Commit && st.Commit > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle leader: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	for len(rig.wal) > 0 {
		<-rig.wal
	}

	const n = 50
	rig.gate.Close()
	for i := range n {
		rig.system.Root.Send(rig.raft, messages.Propose{ID: uint64(i), Data: []byte{byte(i)}})
	}
	rig.gate.Open()

	var got int
	for got == 0 {
		m := next(t, rig.wal, "append after the proposals")
		got = len(m.GetEntries())
	}
	if got != n {
		t.Fatalf("first append after %d queued proposals carried %d entries, want all %d", n, got, n)
	}
}

// A snapshot that says members were removed makes the transport refuse
// them, so that a member that comes back is told to stop: one this member
// knew (2), and one whose addition and removal it never saw (3).
func TestRaftRestoredRemovalReachesTransport(t *testing.T) {
	rig := newRaftRig(t, 1)
	add := messages.ApplyConfChange{Index: 1, PeerURL: "http://b", Change: &raftpb.ConfChange{
		Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(2)), Context: []byte("http://b"),
	}}
	if _, err := rig.system.Root.RequestFuture(rig.raft, add, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	rig.system.Root.Send(rig.raft, messages.MembersRestored{Members: map[uint64]string{1: ""}, Removed: []uint64{2, 3}})
	if u, ok := rig.status(t).Members[2]; ok {
		t.Fatalf("member 2 still listed (%q) after a snapshot that removed it", u)
	}
	for _, id := range []uint64{2, 3} {
		if _, ok := rig.net.peerURL(id); ok || !rig.net.wasRemoved(id) {
			t.Fatalf("the transport was not told that member %d is removed", id)
		}
	}
}

// A conf change or a restored snapshot that names a member without its URL
// (raftexample's bootstrap entries and JSON snapshots carry none) keeps the
// URL already known; one that brings a URL replaces it.
func TestRaftKeepsKnownPeerURLs(t *testing.T) {
	add := func(url string) any {
		return messages.ApplyConfChange{Index: 1, PeerURL: url, Change: &raftpb.ConfChange{
			Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(2)), Context: []byte(url),
		}}
	}
	tests := []struct {
		name  string
		steps []any
		want  string
	}{
		{"added with a URL", []any{add("http://b")}, "http://b"},
		{"added again without one", []any{add("http://b"), add("")}, "http://b"},
		{"added again with a new one", []any{add("http://b"), add("http://b2")}, "http://b2"},
		{"restored without one", []any{add("http://b"), messages.MembersRestored{Members: map[uint64]string{1: "", 2: ""}}}, "http://b"},
		{"restored with a new one", []any{add("http://b"), messages.MembersRestored{Members: map[uint64]string{1: "", 2: "http://b3"}}}, "http://b3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRaftRig(t, 1)
			for _, step := range tc.steps {
				if _, ok := step.(messages.ApplyConfChange); ok {
					if _, err := rig.system.Root.RequestFuture(rig.raft, step, 5*time.Second).Result(); err != nil {
						t.Fatal(err)
					}
				} else {
					rig.system.Root.Send(rig.raft, step)
				}
			}
			if got := rig.status(t).Members[2]; got != tc.want {
				t.Fatalf("member 2's URL is %q, want %q", got, tc.want)
			}
			if got, _ := rig.net.peerURL(2); got != tc.want {
				t.Fatalf("transport was given %q for member 2, want %q", got, tc.want)
			}
		})
	}
}
