package transport

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
)

// TestSnapshotStreamToRafthttp: etcd's own snapshotHandler takes our POST
// /raft/snapshot: its snapshotter writes our bytes to the db file of the
// snapshot's index, its raft gets the MsgSnap, and we hear SnapshotFinish.
func TestSnapshotStreamToRafthttp(t *testing.T) {
	const size = 3 << 20
	dir := t.TempDir()
	src := &genSource{size: size}
	p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{}, func(c *HTTPConfig, theirs *rafthttp.Transport) {
		c.SnapshotSource = src.open
		theirs.Snapshotter = snap.New(zaptest.NewLogger(t), dir)
	})
	want := snapMsg(1, 2, 0x42)
	p.ours.Send([]*raftpb.Message{proto.Clone(want).(*raftpb.Message)})

	var got *raftpb.Message
	waitUntil(t, "etcd's raft to get the MsgSnap", func() bool {
		got = p.theirRaft.received(isMsgSnap)
		return got != nil
	})
	if !proto.Equal(got, want) {
		t.Fatalf("rafthttp decoded %v, want %v", got, want)
	}
	// rafthttp hands raft the message only after SaveDBFrom returned.
	f, err := os.Open(filepath.Join(dir, fmt.Sprintf("%016x.snap.db", 0x42)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || [sha256.Size]byte(h.Sum(nil)) != genSum(t, size) {
		t.Fatalf("etcd's db file has %d bytes, want %d, or other bytes than we sent", n, size)
	}
	p.oursInbox.wait(t, isSnapReport(2, raft.SnapshotFinish))
	if s := p.ours.Stats()[2]; s.SnapshotsSent != 1 || s.SnapshotBytesSent != size {
		t.Errorf("sender stats %+v", s)
	}
}

// TestSnapshotStreamFromRafthttp: etcd's snapshot sender (SendSnapshot with
// a snap.Message, as etcdserver sends its db) reaches our sink whole, the
// MsgSnap our inbox, and etcd hears SnapshotFinish.
func TestSnapshotStreamFromRafthttp(t *testing.T) {
	const size = 3 << 20
	sink := &hashSink{}
	p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{}, func(c *HTTPConfig, _ *rafthttp.Transport) {
		c.SnapshotSink = sink.sink
	})
	want := snapMsg(2, 1, 0x43)
	data := newGen(size)
	sm := snap.NewMessage(proto.Clone(want).(*raftpb.Message), data, size)
	p.theirs.SendSnapshot(sm)

	got := p.oursInbox.waitMessage(t, isMsgSnap)
	if !proto.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if call := sink.all()[0]; call.err != nil || call.n != size || call.sum != genSum(t, size) {
		t.Fatalf("sink read %d bytes (err %v), want %d of the same hash", call.n, call.err, size)
	}
	waitUntil(t, "rafthttp to report the snapshot finished", p.theirRaft.snapshotFinished)
	select {
	case ok := <-sm.CloseNotify():
		if !ok {
			t.Fatal("rafthttp closed the snapshot message as failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rafthttp never closed the snapshot message")
	}
	if s := p.ours.Stats()[2]; s.SnapshotsReceived != 1 || s.SnapshotBytesReceived != size {
		t.Errorf("receiver stats %+v", s)
	}
}
