package transport

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// snapPair is member 1 with src as its SnapshotSource and member 2 with
// sink as its SnapshotSink (either may be nil). 1 knows where 2 is; 2 knows
// 1 only by id, so every request goes from 1 to 2.
func snapPair(t *testing.T, src SnapshotSource, sink *hashSink) (a, b *httpMember) {
	t.Helper()
	a = newHTTPMemberWith(t, 1, &wireRecorder{}, func(c *HTTPConfig) { c.SnapshotSource = src }, nil)
	bInbox := &wireRecorder{}
	b = newHTTPMemberWith(t, 2, bInbox, func(c *HTTPConfig) {
		if sink != nil {
			sink.log = bInbox.add
			c.SnapshotSink = sink.sink
		}
	}, nil)
	a.tr.AddPeer(2, b.srv.URL)
	b.tr.AddPeer(1, "")
	return a, b
}

func isSnapReport(id uint64, s raft.SnapshotStatus) func(any) bool {
	return func(m any) bool { return m == messages.ReportSnapshot{ID: id, Status: s} }
}

func isMsgSnap(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap }

// noMsgSnap fails if r holds a MsgSnap.
func noMsgSnap(t *testing.T, r *wireRecorder) {
	t.Helper()
	if r.has(isMsgSnap) {
		t.Fatalf("a MsgSnap was delivered: %v", r.all())
	}
}

// TestSnapshotStreamRoundTrip: a MsgSnap with 24 MiB of data made on the
// fly reaches the sink byte for byte, the message reaches the inbox only
// after the sink returned, and the sender hears SnapshotFinish. The heap
// grows by far less than the data while it crosses: neither side holds it.
func TestSnapshotStreamRoundTrip(t *testing.T) {
	const size = 24 << 20
	src := &genSource{size: size}
	sink := &hashSink{sampleHeap: true}
	a, b := snapPair(t, src.open, sink)
	want := snapMsg(1, 2, 100)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	start := time.Now()
	a.tr.Send([]*raftpb.Message{proto.Clone(want).(*raftpb.Message)})
	got := b.inbox.waitMessage(t, isMsgSnap)
	t.Logf("%d MiB in %v", size>>20, time.Since(start))
	if !proto.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	all := b.inbox.all()
	done := slices.IndexFunc(all, func(m any) bool { return m == sinkDone{index: 100} })
	msg := slices.IndexFunc(all, func(m any) bool { rm, ok := m.(*raftpb.Message); return ok && isMsgSnap(rm) })
	if done < 0 || done > msg {
		t.Fatalf("the MsgSnap reached the inbox before the sink returned: %v", all)
	}
	call := sink.all()[0]
	if call.err != nil || call.n != size || call.sum != genSum(t, size) {
		t.Fatalf("sink read %d bytes (err %v), want %d; same hash: %v", call.n, call.err, size, call.sum == genSum(t, size))
	}
	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFinish))
	for _, m := range a.inbox.all() {
		if m == (messages.ReportUnreachable{ID: 2}) || m == (messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFailure}) {
			t.Fatalf("a delivered snapshot was reported as failed: %v", m)
		}
	}
	// SnapshotFinish is reported after the source is closed.
	if opened := src.all(); len(opened) != 1 || !opened[0].isClosed() {
		t.Fatalf("source opened %d times, closed: %v", len(opened), len(opened) == 1 && opened[0].isClosed())
	}
	if s := a.stats(2); s.SnapshotsSent != 1 || s.SnapshotBytesSent != size || s.Pipeline.Sent != 0 || s.SnapshotsFailed != 0 {
		t.Errorf("sender stats %+v", s)
	}
	if s := b.stats(1); s.SnapshotsReceived != 1 || s.SnapshotBytesReceived != size {
		t.Errorf("receiver stats %+v", s)
	}
	if grew := int64(sink.heapPeak) - int64(base); grew > size/3 {
		t.Errorf("the heap grew by %d MiB while %d MiB crossed: something holds the data", grew>>20, size>>20)
	} else {
		t.Logf("heap in use grew by at most %d KiB", max(grew, 0)>>10)
	}
}

// TestSnapshotSourceFailsMidway: a source that breaks after 5 MiB cuts the
// body short; the sink sees the error, nothing reaches the inbox, and the
// sender reports the peer unreachable and the snapshot failed.
func TestSnapshotSourceFailsMidway(t *testing.T) {
	src := &genSource{size: 16 << 20, tune: func(g *genReader) { g.failAt = 5 << 20 }}
	sink := &hashSink{}
	a, b := snapPair(t, src.open, sink)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100)})

	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFailure))
	a.inbox.wait(t, func(m any) bool { return m == messages.ReportUnreachable{ID: 2} })
	if call := sink.waitCall(t); call.err == nil || call.n >= 16<<20 {
		t.Fatalf("the sink read %d bytes and no error from a body cut short", call.n)
	}
	// Counted once the sink returned, after which nothing is delivered.
	waitUntil(t, "the receiver to count the failure", func() bool { return b.stats(1).SnapshotsFailed == 1 })
	noMsgSnap(t, b.inbox)
	if s := a.stats(2); s.SnapshotsFailed != 1 || s.SnapshotsSent != 0 {
		t.Errorf("sender stats %+v", s)
	}
	if g := src.all()[0]; !g.isClosed() {
		t.Error("the source was left open")
	}
}

// TestSnapshotSinkFails: a sink that fails midway (a full disk) gets its
// peer a 500; the sender reports failure and nothing is delivered.
func TestSnapshotSinkFails(t *testing.T) {
	src := &genSource{size: 8 << 20}
	sink := &hashSink{failAfter: 1 << 20}
	a, b := snapPair(t, src.open, sink)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100)})

	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFailure))
	waitUntil(t, "the receiver to count the failure", func() bool { return b.stats(1).SnapshotsFailed == 1 })
	noMsgSnap(t, b.inbox)
	if call := sink.all()[0]; call.err != errDiskFull {
		t.Fatalf("sink returned %v, want %v", call.err, errDiskFull)
	}
}

// TestSnapshotToPeerWithoutSink: a peer that takes no snapshot data (404)
// fails the transfer; its inbox gets nothing.
func TestSnapshotToPeerWithoutSink(t *testing.T) {
	src := &genSource{size: 1 << 20}
	a, b := snapPair(t, src.open, nil)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100)})
	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFailure))
	noMsgSnap(t, b.inbox)
	if s := a.stats(2); s.SnapshotsFailed != 1 {
		t.Errorf("sender stats %+v", s)
	}
}

// TestSnapshotCancelledByClose: Close ends a transfer in flight, even one
// whose source is blocked in Read, and waits for the sender; the receiver's
// sink sees the body cut short and delivers nothing.
func TestSnapshotCancelledByClose(t *testing.T) {
	src := &genSource{size: 16 << 20, tune: func(g *genReader) { g.holdAt = 2 << 20 }}
	sink := &hashSink{}
	a, b := snapPair(t, src.open, sink)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100)})
	waitUntil(t, "the source to be opened", func() bool { return len(src.all()) == 1 })
	<-src.all()[0].holding

	closed := make(chan error, 1)
	go func() { closed <- a.tr.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the transfer")
	}
	// The sender reported before its actor stopped, which Close waited for.
	if !slices.ContainsFunc(a.inbox.all(), isSnapReport(2, raft.SnapshotFailure)) {
		t.Fatalf("no SnapshotFailure after Close: %v", a.inbox.all())
	}
	if !src.all()[0].isClosed() {
		t.Fatal("the source was left open")
	}
	if call := sink.waitCall(t); call.err == nil {
		t.Fatalf("the sink read %d bytes and no error from a cancelled transfer", call.n)
	}
	waitUntil(t, "the receiver to count the failure", func() bool { return b.stats(1).SnapshotsFailed == 1 })
	noMsgSnap(t, b.inbox)
}

// TestSecondSnapshotDropped: a MsgSnap that comes while one to the same
// peer is in flight is dropped and reported at once; the first completes.
func TestSecondSnapshotDropped(t *testing.T) {
	src := &genSource{size: 2 << 20, tune: func(g *genReader) { g.holdAt = 1 << 20 }}
	sink := &hashSink{}
	a, b := snapPair(t, src.open, sink)
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100), snapMsg(1, 2, 101)})

	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFailure))
	a.inbox.wait(t, func(m any) bool { return m == messages.ReportUnreachable{ID: 2} })
	if s := a.stats(2); s.SnapshotsDropped != 1 {
		t.Fatalf("sender stats %+v, want one dropped snapshot", s)
	}
	close(src.all()[0].release)
	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFinish))
	if got := b.inbox.waitMessage(t, isMsgSnap); got.GetSnapshot().GetMetadata().GetIndex() != 100 {
		t.Fatalf("delivered the snapshot at %d, want 100", got.GetSnapshot().GetMetadata().GetIndex())
	}
	if n := len(src.all()); n != 1 {
		t.Fatalf("the source was opened %d times, want once", n)
	}
	p, _ := a.tr.peer(2)
	waitUntil(t, "the peer's queue to empty", func() bool { return p.queued.Load() == 0 })
}

// TestSnapshotCancelledByRemovePeer: removing the peer ends its transfer
// in flight, whose source is closed and whose failure is reported.
func TestSnapshotCancelledByRemovePeer(t *testing.T) {
	src := &genSource{size: 16 << 20, tune: func(g *genReader) { g.holdAt = 2 << 20 }}
	a, _ := snapPair(t, src.open, &hashSink{})
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, 100)})
	waitUntil(t, "the source to be opened", func() bool { return len(src.all()) == 1 })
	<-src.all()[0].holding

	a.tr.RemovePeer(2)
	a.inbox.wait(t, isSnapReport(2, raft.SnapshotFailure))
	if !src.all()[0].isClosed() {
		t.Fatal("the source was left open") // closed before the report
	}
}
