package transport

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// memorySnapPair joins member 1 with src and member 2 with sink (either may
// be nil) to a network, each knowing the other.
func memorySnapPair(src *genSource, sink *hashSink) (n *Network, a, b *Memory, boxA, boxB *box) {
	n, boxA, boxB = NewNetwork(), &box{}, &box{}
	var optsA, optsB MemoryOptions
	if src != nil {
		optsA.SnapshotSource = src.open
	}
	if sink != nil {
		sink.log = boxB.inbox
		optsB.SnapshotSink = sink.sink
	}
	a, b = n.JoinWith(1, boxA.inbox, optsA), n.JoinWith(2, boxB.inbox, optsB)
	a.AddPeer(2, "http://peer")
	b.AddPeer(1, "http://peer")
	return n, a, b, boxA, boxB
}

func TestMemorySnapshotData(t *testing.T) {
	const size = 1 << 20
	finish := messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFinish}
	failed := []any{messages.ReportUnreachable{ID: 2}, messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFailure}}

	t.Run("delivered after the sink", func(t *testing.T) {
		src, sink := &genSource{size: size}, &hashSink{}
		n, a, _, boxA, boxB := memorySnapPair(src, sink)
		want := snapMsg(1, 2, 7)
		a.Send([]*raftpb.Message{proto.Clone(want).(*raftpb.Message)})
		got := boxB.take()
		if len(got) != 2 || got[0] != (sinkDone{index: 7}) || !proto.Equal(got[1].(*raftpb.Message), want) {
			t.Fatalf("receiver got %v, want the sink's return, then %v", got, want)
		}
		if got := boxA.take(); !slices.Equal(got, []any{finish}) {
			t.Fatalf("sender got %v, want %v", got, finish)
		}
		if call := sink.all()[0]; call.n != size || call.sum != genSum(t, size) {
			t.Fatalf("sink read %d bytes, want %d of the same hash", call.n, size)
		}
		if !src.all()[0].isClosed() {
			t.Error("the source was left open")
		}
		if d := n.Delivered(raftpb.MsgSnap); d != 1 {
			t.Errorf("Delivered(MsgSnap) = %d, want 1", d)
		}
	})

	failures := []struct {
		name string
		src  *genSource
		sink *hashSink
	}{
		{"sink fails", &genSource{size: size}, &hashSink{failAfter: 1000}},
		{"sink leaves data unread", &genSource{size: size}, &hashSink{leave: true}},
		{"source fails to open", &genSource{size: size, openErr: errSourceBroken}, &hashSink{}},
		{"source fails midway", &genSource{size: size, tune: func(g *genReader) { g.failAt = size / 2 }}, &hashSink{}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			n, a, _, boxA, boxB := memorySnapPair(tc.src, tc.sink)
			a.Send([]*raftpb.Message{snapMsg(1, 2, 7)})
			if got := boxA.take(); !slices.Equal(got, failed) {
				t.Fatalf("sender got %v, want %v", got, failed)
			}
			// A sink that left data unread did return nil (sinkDone).
			if got := boxB.take(); slices.ContainsFunc(got, func(m any) bool { _, ok := m.(*raftpb.Message); return ok }) {
				t.Fatalf("receiver got %v from a failed transfer", got)
			}
			if d := n.Delivered(raftpb.MsgSnap); d != 0 {
				t.Errorf("Delivered(MsgSnap) = %d, want 0", d)
			}
			for _, g := range tc.src.all() {
				if !g.isClosed() {
					t.Error("the source was left open")
				}
			}
		})
	}

	t.Run("receiver without a sink", func(t *testing.T) {
		src := &genSource{size: size}
		_, a, _, boxA, boxB := memorySnapPair(src, nil)
		a.Send([]*raftpb.Message{snapMsg(1, 2, 7)})
		if got := boxB.take(); len(got) != 1 {
			t.Fatalf("receiver got %v, want the MsgSnap alone", got)
		}
		if got := boxA.take(); !slices.Equal(got, []any{finish}) {
			t.Fatalf("sender got %v, want %v", got, finish)
		}
		if len(src.all()) != 0 {
			t.Error("the source was opened for a receiver without a sink")
		}
	})
}
