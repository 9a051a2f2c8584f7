package transport

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// etcdRaft is the raft side of a real rafthttp.Transport: it records what
// the transport hands it.
type etcdRaft struct {
	mu        sync.Mutex
	got       []*raftpb.Message
	snapshots []raft.SnapshotStatus
	removed   map[uint64]bool
}

func (r *etcdRaft) Process(_ context.Context, m *raftpb.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	return nil
}

func (r *etcdRaft) IsIDRemoved(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removed[id]
}

func (r *etcdRaft) ReportUnreachable(uint64) {}

func (r *etcdRaft) ReportSnapshot(_ uint64, s raft.SnapshotStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshots = append(r.snapshots, s)
}

// received returns the first message that satisfies ok.
func (r *etcdRaft) received(ok func(*raftpb.Message) bool) *raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.got {
		if ok(m) {
			return m
		}
	}
	return nil
}

func (r *etcdRaft) snapshotFinished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.snapshots {
		if s == raft.SnapshotFinish {
			return true
		}
	}
	return false
}

// wirePair is one member of ours (id 1) and one etcd rafthttp member (id 2),
// each serving its peer handler, with each other as peers.
type wirePair struct {
	ours      *HTTP
	oursInbox *wireRecorder
	theirs    *rafthttp.Transport
	theirRaft *etcdRaft
}

// tune, if any, edits both members' configurations before they start.
func newWirePair(t *testing.T, ourCluster, theirCluster uint64, theirRaft *etcdRaft, tune ...func(*HTTPConfig, *rafthttp.Transport)) *wirePair {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	p := &wirePair{oursInbox: &wireRecorder{}, theirRaft: theirRaft}
	cfg := HTTPConfig{ID: 1, ClusterID: ourCluster, System: sys, Inbox: p.oursInbox.add, Logger: lg}
	p.theirs = &rafthttp.Transport{
		Logger:      lg.Named("rafthttp"),
		ID:          types.ID(2),
		ClusterID:   types.ID(theirCluster),
		Raft:        theirRaft,
		ServerStats: stats.NewServerStats("", ""),
		LeaderStats: stats.NewLeaderStats(lg, "2"),
		ErrorC:      make(chan error, 16),
	}
	for _, f := range tune {
		f(&cfg, p.theirs)
	}
	var err error
	if p.ours, err = NewHTTP(cfg); err != nil {
		t.Fatal(err)
	}
	oursSrv := httptest.NewServer(p.ours.Handler())
	if err := p.theirs.Start(); err != nil {
		t.Fatal(err)
	}
	theirSrv := httptest.NewServer(p.theirs.Handler())
	t.Cleanup(func() {
		// Ours first: that ends the streams its handler holds open, so
		// both servers can close.
		if err := p.ours.Close(); err != nil {
			t.Error(err)
		}
		p.theirs.Stop()
		oursSrv.Close()
		theirSrv.Close()
		sys.Shutdown()
	})
	p.theirs.AddPeer(types.ID(1), []string{oursSrv.URL})
	p.ours.AddPeer(2, theirSrv.URL)
	return p
}

// wireRecorder records what an inbox got, in order.
type wireRecorder struct {
	mu  sync.Mutex
	got []any
}

func (r *wireRecorder) add(m any) {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
}

func (r *wireRecorder) all() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.got...)
}

// wait returns the first recorded item that satisfies ok, waiting for it.
func (r *wireRecorder) wait(t *testing.T, ok func(any) bool) any {
	t.Helper()
	var found any
	waitUntil(t, "the inbox", func() bool {
		for _, m := range r.all() {
			if ok(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// has tells whether a message satisfying ok was recorded.
func (r *wireRecorder) has(ok func(*raftpb.Message) bool) bool {
	for _, m := range r.all() {
		if rm, isMsg := m.(*raftpb.Message); isMsg && ok(rm) {
			return true
		}
	}
	return false
}

func (r *wireRecorder) waitMessage(t *testing.T, ok func(*raftpb.Message) bool) *raftpb.Message {
	t.Helper()
	return r.wait(t, func(m any) bool {
		rm, isMsg := m.(*raftpb.Message)
		return isMsg && ok(rm)
	}).(*raftpb.Message)
}

// waitUntil polls cond until it holds or the deadline passes; each poll
// may also act (resend a message that went by the wrong channel, say).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func wireMsgApp(from, to, term, index uint64, commit uint64, data ...string) *raftpb.Message {
	m := &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: new(from), To: new(to),
		Term: new(term), LogTerm: new(term), Index: new(index), Commit: new(commit),
	}
	for i, d := range data {
		m.Entries = append(m.Entries, &raftpb.Entry{
			Term: new(term), Index: new(index + uint64(i) + 1), Type: raftpb.EntryNormal.Enum(), Data: []byte(d),
		})
	}
	return m
}

func wireHeartbeat(from, to, term uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(from), To: new(to), Term: new(term), Commit: new(uint64(3))}
}

func wireSnapshot(from, to uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: new(from), To: new(to), Term: new(uint64(5)),
		Snapshot: &raftpb.Snapshot{
			Data: []byte(`{"/a":"1"}`),
			Metadata: &raftpb.SnapshotMetadata{
				Index: new(uint64(100)), Term: new(uint64(5)),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
			},
		},
	}
}

// TestWireFromRafthttp: every channel etcd's rafthttp sends on reaches our
// inbox intact, including a msgappv2 0x01 frame written by rafthttp's own
// encoder and a MsgSnap by pipeline.
func TestWireFromRafthttp(t *testing.T) {
	p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{})
	stat := func() PeerStats { return p.ours.Stats()[2] }

	// Until our readers have dialled rafthttp, it sends by pipeline; keep
	// sending until a MsgApp comes by the msgappv2 stream. Its entries end
	// at 11, so rafthttp's encoder now expects a MsgApp at index 11.
	first := wireMsgApp(2, 1, 5, 10, 10, "e11")
	waitUntil(t, "a MsgApp from rafthttp by the msgappv2 stream", func() bool {
		if stat().MsgApp.Received > 0 {
			return true
		}
		p.theirs.Send([]*raftpb.Message{proto.Clone(first).(*raftpb.Message)})
		return false
	})
	if stat().Pipeline.Received == 0 {
		t.Log("rafthttp's streams were attached before its first send; the pipeline is covered by the snapshot below")
	}

	// The continuation is what rafthttp shortens to a 0x01 frame.
	next := wireMsgApp(2, 1, 5, 11, 11, "e12", "e13")
	p.theirs.Send([]*raftpb.Message{proto.Clone(next).(*raftpb.Message)})
	got := p.oursInbox.waitMessage(t, func(m *raftpb.Message) bool {
		return m.GetType() == raftpb.MsgApp && m.GetIndex() == 11
	})
	if !proto.Equal(got, next) {
		t.Fatalf("0x01 frame decoded as %v, want %v", got, next)
	}
	if n := stat().MsgAppFastFrames; n != 1 {
		t.Fatalf("%d msgappv2 0x01 frames received, want 1", n)
	}

	// Everything that is not a MsgApp or MsgSnap takes the message stream.
	// Until its msgappv2 stream was up, rafthttp may have sent MsgApps by
	// the message stream too, so count from here, and keep sending until a
	// heartbeat is in and the message stream has carried something since.
	hb := wireHeartbeat(2, 1, 5)
	baseline := stat().Message.Received
	isHeartbeat := func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgHeartbeat }
	waitUntil(t, "a heartbeat from rafthttp by the message stream", func() bool {
		if stat().Message.Received > baseline && p.oursInbox.has(isHeartbeat) {
			return true
		}
		p.theirs.Send([]*raftpb.Message{proto.Clone(hb).(*raftpb.Message)})
		return false
	})
	if got := p.oursInbox.waitMessage(t, isHeartbeat); !proto.Equal(got, hb) {
		t.Fatalf("heartbeat decoded as %v, want %v", got, hb)
	}

	// A snapshot always goes by pipeline, and rafthttp reports it done
	// once we answered 204.
	before := stat().Pipeline.Received
	snap := wireSnapshot(2, 1)
	p.theirs.Send([]*raftpb.Message{proto.Clone(snap).(*raftpb.Message)})
	if got := p.oursInbox.waitMessage(t, func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap }); !proto.Equal(got, snap) {
		t.Fatalf("snapshot decoded as %v, want %v", got, snap)
	}
	if stat().Pipeline.Received != before+1 {
		t.Fatalf("the snapshot did not come by pipeline: %+v", stat())
	}
	waitUntil(t, "rafthttp to report the snapshot finished", p.theirRaft.snapshotFinished)
}

// TestWireToRafthttp: what we send on each channel, etcd's rafthttp decodes
// to the same message, and a MsgSnap by pipeline is reported finished.
func TestWireToRafthttp(t *testing.T) {
	p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{})
	stat := func() PeerStats { return p.ours.Stats()[2] }

	cases := []struct {
		name string
		msg  *raftpb.Message
		sent func(PeerStats) uint64
	}{
		{"MsgApp by the msgappv2 stream", wireMsgApp(1, 2, 7, 20, 20, "a", "b"), func(s PeerStats) uint64 { return s.MsgApp.Sent }},
		{"MsgHeartbeat by the message stream", wireHeartbeat(1, 2, 7), func(s PeerStats) uint64 { return s.Message.Sent }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// rafthttp dials our streams on its own schedule; until it has,
			// we send by pipeline (or a MsgApp by the message stream), so
			// keep sending until the stream carried one since now and
			// rafthttp has it.
			baseline := tc.sent(stat())
			var got *raftpb.Message
			waitUntil(t, "the stream to carry it", func() bool {
				got = p.theirRaft.received(func(m *raftpb.Message) bool { return m.GetType() == tc.msg.GetType() })
				if tc.sent(stat()) > baseline && got != nil {
					return true
				}
				p.ours.Send([]*raftpb.Message{proto.Clone(tc.msg).(*raftpb.Message)})
				return false
			})
			if !proto.Equal(got, tc.msg) {
				t.Fatalf("rafthttp decoded %v, want %v", got, tc.msg)
			}
		})
	}

	t.Run("MsgSnap by pipeline", func(t *testing.T) {
		snap := wireSnapshot(1, 2)
		p.ours.Send([]*raftpb.Message{proto.Clone(snap).(*raftpb.Message)})
		var got *raftpb.Message
		waitUntil(t, "rafthttp to receive the snapshot", func() bool {
			got = p.theirRaft.received(func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap })
			return got != nil
		})
		if !proto.Equal(got, snap) {
			t.Fatalf("rafthttp decoded %v, want %v", got, snap)
		}
		p.oursInbox.wait(t, func(m any) bool {
			r, ok := m.(messages.ReportSnapshot)
			return ok && r.ID == 2 && r.Status == raft.SnapshotFinish
		})
		if s := stat(); s.Pipeline.Sent == 0 {
			t.Fatalf("snapshot not counted as sent by pipeline: %+v", s)
		}
	})
}

// TestWireRefusals: a rafthttp member of another cluster gets nothing
// through, and one that removed us makes us stop.
func TestWireRefusals(t *testing.T) {
	t.Run("cluster ID mismatch", func(t *testing.T) {
		p := newWirePair(t, 0x1000, 0x2000, &etcdRaft{})
		p.ours.Send([]*raftpb.Message{wireSnapshot(1, 2)})
		p.oursInbox.wait(t, func(m any) bool {
			r, ok := m.(messages.ReportSnapshot)
			return ok && r.ID == 2 && r.Status == raft.SnapshotFailure
		})
		p.theirs.Send([]*raftpb.Message{wireHeartbeat(2, 1, 1)})
		// rafthttp reports our 412 on its error channel only for some
		// paths; what matters is that nothing of theirs reached raft.
		waitUntil(t, "our pipeline failure to be counted", func() bool { return p.ours.Stats()[2].Pipeline.Failed > 0 })
		if m := p.theirRaft.received(func(*raftpb.Message) bool { return true }); m != nil {
			t.Fatalf("rafthttp of another cluster accepted %v", m)
		}
		for _, m := range p.oursInbox.all() {
			if _, ok := m.(*raftpb.Message); ok {
				t.Fatalf("we accepted %v from another cluster", m)
			}
		}
	})
	t.Run("removed by the peer", func(t *testing.T) {
		p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{removed: map[uint64]bool{1: true}})
		p.oursInbox.wait(t, func(m any) bool {
			r, ok := m.(messages.MemberRemoved)
			return ok && r.By == 2
		})
	})
	t.Run("peer removed by us", func(t *testing.T) {
		p := newWirePair(t, 0x1000, 0x1000, &etcdRaft{})
		p.ours.RemovePeer(2)
		select {
		case err := <-p.theirs.ErrorC:
			if err == nil || err.Error() != "the member has been permanently removed from the cluster" {
				t.Fatalf("rafthttp reported %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("rafthttp was not told it was removed")
		}
	})
}
