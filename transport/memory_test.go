package transport

import (
	"slices"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// box records what a member's inbox got, in order.
type box struct {
	mu  sync.Mutex
	got []any
}

func (b *box) inbox(m any) {
	b.mu.Lock()
	b.got = append(b.got, m)
	b.mu.Unlock()
}

func (b *box) take() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	got := b.got
	b.got = nil
	return got
}

func msg(from, to uint64, t raftpb.MessageType) *raftpb.Message {
	return &raftpb.Message{Type: t.Enum(), From: new(from), To: new(to), Term: new(uint64(3))}
}

// three joins members 1, 2 and 3, each knowing the other two.
func three() (*Network, map[uint64]*Memory, map[uint64]*box) {
	n := NewNetwork()
	ts := make(map[uint64]*Memory)
	bs := make(map[uint64]*box)
	for id := uint64(1); id <= 3; id++ {
		bs[id] = &box{}
		ts[id] = n.Join(id, bs[id].inbox)
	}
	for id, t := range ts {
		for peer := uint64(1); peer <= 3; peer++ {
			if peer != id {
				t.AddPeer(peer, "http://peer")
			}
		}
	}
	return n, ts, bs
}

func TestDeliveryAndFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(*Network)
		delivered bool
	}{
		{"no fault", func(*Network) {}, true},
		{"cut both ways", func(n *Network) { n.Cut(2, 1) }, false},
		{"cut one way, this way", func(n *Network) { n.CutOneWay(1, 2) }, false},
		{"cut one way, other way", func(n *Network) { n.CutOneWay(2, 1) }, true},
		{"sender isolated", func(n *Network) { n.Isolate(1) }, false},
		{"receiver isolated", func(n *Network) { n.Isolate(2) }, false},
		{"third member isolated", func(n *Network) { n.Isolate(3) }, true},
		{"type dropped", func(n *Network) { n.DropType(raftpb.MsgApp) }, false},
		{"other type dropped", func(n *Network) { n.DropType(raftpb.MsgVote) }, true},
		{"healed", func(n *Network) { n.Isolate(1); n.DropType(raftpb.MsgApp); n.Heal() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ts, bs := three()
			tt.fault(n)
			ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgApp)})
			got2, got1 := bs[2].take(), bs[1].take()
			if tt.delivered {
				if len(got2) != 1 || len(got1) != 0 {
					t.Fatalf("receiver got %v, sender got %v; want one message delivered, nothing reported", got2, got1)
				}
				m := got2[0].(*raftpb.Message)
				if m.GetType() != raftpb.MsgApp || m.GetFrom() != 1 || m.GetTerm() != 3 {
					t.Fatalf("delivered %v", m)
				}
				if n.Delivered(raftpb.MsgApp) != 1 {
					t.Fatalf("Delivered(MsgApp) = %d", n.Delivered(raftpb.MsgApp))
				}
				return
			}
			if len(got2) != 0 {
				t.Fatalf("receiver got %v through a fault", got2)
			}
			if !slices.Equal(got1, []any{messages.ReportUnreachable{ID: 2}}) {
				t.Fatalf("sender got %v, want ReportUnreachable{2}", got1)
			}
		})
	}
}

// The receiver gets a copy: the sender may reuse its message.
func TestDeliveredMessageIsACopy(t *testing.T) {
	_, ts, bs := three()
	m := msg(1, 2, raftpb.MsgApp)
	m.Entries = []*raftpb.Entry{{Index: new(uint64(7)), Data: []byte("x")}}
	ts[1].Send([]*raftpb.Message{m})
	m.Entries[0].Data[0] = 'y'
	got := bs[2].take()[0].(*raftpb.Message)
	if string(got.GetEntries()[0].GetData()) != "x" {
		t.Fatal("receiver shares memory with the sender")
	}
}

func TestSnapshotOutcomeIsReported(t *testing.T) {
	n, ts, bs := three()
	snap := func() *raftpb.Message {
		m := msg(1, 2, raftpb.MsgSnap)
		m.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(2))}}
		return m
	}
	ts[1].Send([]*raftpb.Message{snap()})
	if got := bs[1].take(); !slices.Equal(got, []any{messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFinish}}) {
		t.Fatalf("after a delivered snapshot the sender got %v", got)
	}
	n.Cut(1, 2)
	ts[1].Send([]*raftpb.Message{snap()})
	want := []any{messages.ReportUnreachable{ID: 2}, messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFailure}}
	if got := bs[1].take(); !slices.Equal(got, want) {
		t.Fatalf("after a lost snapshot the sender got %v, want %v", got, want)
	}
}

func TestPeersAndRemoval(t *testing.T) {
	n, ts, bs := three()
	// A message to a member that is not a peer is not sent.
	ts[1].Send([]*raftpb.Message{msg(1, 9, raftpb.MsgHeartbeat)})
	if got := bs[1].take(); !slices.Equal(got, []any{messages.ReportUnreachable{ID: 9}}) {
		t.Fatalf("unknown peer: sender got %v", got)
	}
	// A member that removed the sender refuses it and says so.
	ts[2].RemovePeer(1)
	ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	if got := bs[2].take(); len(got) != 0 {
		t.Fatalf("removed sender's message was delivered: %v", got)
	}
	if got := bs[1].take(); !slices.Equal(got, []any{messages.MemberRemoved{By: 2}}) {
		t.Fatalf("removed sender got %v, want MemberRemoved{2}", got)
	}
	// Adding it back undoes the removal.
	ts[2].AddPeer(1, "http://peer")
	ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	if got := bs[2].take(); len(got) != 1 {
		t.Fatalf("re-added sender's message: receiver got %v", got)
	}
	// A closed member is unreachable, and closing twice is safe.
	if err := ts[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts[2].Close(); err != nil {
		t.Fatal(err)
	}
	ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	if got := bs[1].take(); !slices.Equal(got, []any{messages.ReportUnreachable{ID: 2}}) {
		t.Fatalf("closed peer: sender got %v", got)
	}
	// A restarted member joins again and is reached.
	b2 := &box{}
	n.Join(2, b2.inbox)
	ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgHeartbeat)})
	if got := b2.take(); len(got) != 1 {
		t.Fatalf("rejoined member got %v", got)
	}
}

// A holding network delivers nothing until told: then the messages chosen,
// in the order sent, while the others wait or are dropped.
func TestHeldMessages(t *testing.T) {
	n, ts, bs := three()
	n.Hold()
	ts[1].Send([]*raftpb.Message{msg(1, 2, raftpb.MsgApp), msg(1, 3, raftpb.MsgApp), msg(1, 2, raftpb.MsgHeartbeat)})
	ts[2].Send([]*raftpb.Message{msg(2, 1, raftpb.MsgAppResp)})
	if got := bs[2].take(); len(got) != 0 {
		t.Fatalf("member 2 got %v from a holding network", got)
	}
	want := []Held{{1, 2, raftpb.MsgApp}, {1, 3, raftpb.MsgApp}, {1, 2, raftpb.MsgHeartbeat}, {2, 1, raftpb.MsgAppResp}}
	if got := n.Held(); !slices.Equal(got, want) {
		t.Fatalf("held %v, want %v", got, want)
	}
	if d := n.DeliverHeld(func(h Held) bool { return h.To == 2 }); d != 2 {
		t.Fatalf("delivered %d to member 2, want 2", d)
	}
	var types []raftpb.MessageType
	for _, m := range bs[2].take() {
		types = append(types, m.(*raftpb.Message).GetType())
	}
	if !slices.Equal(types, []raftpb.MessageType{raftpb.MsgApp, raftpb.MsgHeartbeat}) {
		t.Fatalf("member 2 got %v, want its MsgApp then its heartbeat", types)
	}
	if d := n.DropHeld(func(h Held) bool { return h.To == 3 }); d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
	n.Isolate(1)
	if d := n.DeliverHeld(nil); d != 1 {
		t.Fatalf("delivered %d, want the last one", d)
	}
	if got := bs[1].take(); len(got) != 0 {
		t.Fatalf("isolated member 1 got %v", got)
	}
	if got := bs[2].take(); len(got) != 1 {
		t.Fatalf("member 2 heard %v, want that member 1 was unreachable", got)
	}
	if got := bs[3].take(); len(got) != 0 || len(n.Held()) != 0 {
		t.Fatalf("member 3 got %v, held %v", got, n.Held())
	}
}
