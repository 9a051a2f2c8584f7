package transport

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// httpMember is one member of ours on a test server.
type httpMember struct {
	tr    *HTTP
	inbox *wireRecorder
	srv   *httptest.Server
	// pipelineFrom records the remote address of each POST /raft the
	// server took: which connection each pipeline message came over.
	pipelineFrom addrLog
}

// addrLog is a list of remote addresses, safe for concurrent use.
type addrLog struct {
	mu    sync.Mutex
	addrs []string
}

func (l *addrLog) add(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = append(l.addrs, addr)
}

func (l *addrLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.addrs)
}

// newHTTPMember starts member id. Cleanup closes the transport before the
// server: the server waits for the stream handlers the transport holds.
func newHTTPMember(t *testing.T, id uint64, tune func(*HTTP)) *httpMember {
	t.Helper()
	return newHTTPMemberWith(t, id, &wireRecorder{}, nil, tune)
}

// newHTTPMemberWith is newHTTPMember with the inbox recorder given and a
// config that configure edits first.
func newHTTPMemberWith(t *testing.T, id uint64, inbox *wireRecorder, configure func(*HTTPConfig), tune func(*HTTP)) *httpMember {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	m := &httpMember{inbox: inbox}
	cfg := HTTPConfig{ID: id, ClusterID: 7, System: sys, Inbox: m.inbox.add,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.Uint64("member", id))}
	if configure != nil {
		configure(&cfg)
	}
	tr, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(tr)
	}
	m.tr = tr
	h := tr.Handler()
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathPipeline {
			m.pipelineFrom.add(r.RemoteAddr)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		m.srv.Close()
		sys.Shutdown()
	})
	return m
}

func (m *httpMember) stats(peer uint64) PeerStats { return m.tr.Stats()[peer] }

// sendUntil sends msg from m to peer until the channel count says carried
// one since the call and peer has received a message of msg's type.
// Streams attach on the peer's schedule; until then messages go by pipeline
// (and a MsgApp by the message stream), so an earlier count proves nothing.
func (m *httpMember) sendUntil(t *testing.T, msg *raftpb.Message, count func(PeerStats) uint64, peer *httpMember) {
	t.Helper()
	baseline := count(m.stats(msg.GetTo()))
	sameType := func(got *raftpb.Message) bool { return got.GetType() == msg.GetType() }
	waitUntil(t, "the channel to carry it", func() bool {
		if count(m.stats(msg.GetTo())) > baseline && peer.inbox.has(sameType) {
			return true
		}
		m.tr.Send([]*raftpb.Message{proto.Clone(msg).(*raftpb.Message)})
		return false
	})
}

func msgAppSent(s PeerStats) uint64  { return s.MsgApp.Sent }
func messageSent(s PeerStats) uint64 { return s.Message.Sent }

func TestStreamsBetweenOurMembers(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL)
	b.tr.AddPeer(1, a.srv.URL)

	tests := []struct {
		name string
		msg  *raftpb.Message
		used func(PeerStats) uint64
	}{
		{"MsgApp by msgappv2", wireMsgApp(1, 2, 3, 5, 5, "x", "y"), msgAppSent},
		{"MsgVote by message stream", &raftpb.Message{Type: raftpb.MsgVote.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(4)), LogTerm: new(uint64(3)), Index: new(uint64(7))},
			messageSent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.sendUntil(t, tc.msg, tc.used, b)
			got := b.inbox.waitMessage(t, func(m *raftpb.Message) bool { return m.GetType() == tc.msg.GetType() })
			if !proto.Equal(got, tc.msg) {
				t.Fatalf("got %v, want %v", got, tc.msg)
			}
		})
	}
	if s := b.stats(1); s.MsgApp.Received == 0 || s.Message.Received == 0 {
		t.Fatalf("receiver did not count its streams: %+v", s)
	}
}

// TestPipelineWithoutStreams: a peer that never dials us (its URL for us is
// unknown) still gets every message, by pipeline.
func TestPipelineWithoutStreams(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL)
	b.tr.AddPeer(1, "") // b accepts a, but cannot dial it: no streams a→b

	hb := wireHeartbeat(1, 2, 3)
	a.tr.Send([]*raftpb.Message{proto.Clone(hb).(*raftpb.Message)})
	if got := b.inbox.waitMessage(t, func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgHeartbeat }); !proto.Equal(got, hb) {
		t.Fatalf("got %v, want %v", got, hb)
	}
	if s := a.stats(2); s.Pipeline.Sent != 1 || s.Message.Sent != 0 || s.MsgApp.Sent != 0 {
		t.Fatalf("sender stats %+v, want exactly one pipeline message", s)
	}
	if s := b.stats(1); s.Pipeline.Received != 1 {
		t.Fatalf("receiver stats %+v, want one pipeline message", s)
	}
}

func TestSnapshotStatusReported(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more
	a.tr.AddPeer(2, b.srv.URL)
	a.tr.AddPeer(3, downURL)
	b.tr.AddPeer(1, a.srv.URL)

	a.tr.Send([]*raftpb.Message{wireSnapshot(1, 2), wireSnapshot(1, 3)})
	b.inbox.waitMessage(t, func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgSnap })
	for _, want := range []any{
		messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFinish},
		messages.ReportSnapshot{ID: 3, Status: raft.SnapshotFailure},
		messages.ReportUnreachable{ID: 3},
	} {
		a.inbox.wait(t, func(m any) bool { return m == want })
	}
	for _, m := range a.inbox.all() {
		if m == (messages.ReportSnapshot{ID: 2, Status: raft.SnapshotFailure}) || m == (messages.ReportUnreachable{ID: 2}) {
			t.Fatalf("a delivered snapshot was reported as failed: %v", m)
		}
	}
}

// TestFullQueueDropsAndReports: a peer that accepts connections but never
// answers fills its queues; Send then drops, counts and reports, and does
// not wait.
func TestFullQueueDropsAndReports(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) }) // runs before stuck.Close
	a := newHTTPMember(t, 1, func(h *HTTP) { h.queueSize, h.pipelineSize = 8, 2 })
	a.tr.AddPeer(2, stuck.URL)

	const n = 50
	for i := range n {
		a.tr.Send([]*raftpb.Message{wireHeartbeat(1, 2, uint64(i+1))})
	}
	// At most one POST in flight plus pipelineSize waiting can still be
	// delivered or fail later; everything else is dropped now.
	waitUntil(t, "drops to be counted", func() bool {
		s := a.stats(2)
		return s.QueueFull+s.Pipeline.Dropped >= n-1-2
	})
	unreachable := 0
	for _, m := range a.inbox.all() {
		if m == (messages.ReportUnreachable{ID: 2}) {
			unreachable++
		}
	}
	if unreachable < n-1-2 {
		t.Fatalf("%d ReportUnreachable for %d dropped messages", unreachable, n-3)
	}
}

// TestRemovedMemberIsTold: a member we removed hears 410 on its next dial
// and its transport reports MemberRemoved.
func TestRemovedMemberIsTold(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL)
	b.tr.AddPeer(1, a.srv.URL)
	b.sendUntil(t, wireHeartbeat(2, 1, 1), messageSent, a)

	a.tr.RemovePeer(2)
	b.inbox.wait(t, func(m any) bool { return m == messages.MemberRemoved{By: 1} })
	if _, ok := a.tr.Stats()[2]; ok {
		t.Fatal("a removed peer is still in Stats")
	}
}

// TestPeerURLChange: a peer first known at a wrong URL is reached once the
// URL is corrected.
func TestPeerURLChange(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	a.tr.AddPeer(2, down.URL)
	a.tr.Send([]*raftpb.Message{wireHeartbeat(1, 2, 1)})
	a.inbox.wait(t, func(m any) bool { return m == messages.ReportUnreachable{ID: 2} })

	// Only now may b dial a: a stream from b to a would carry a's message
	// whatever a's URL for b is.
	b.tr.AddPeer(1, a.srv.URL)
	a.tr.AddPeer(2, b.srv.URL)
	b.sendUntil(t, wireHeartbeat(2, 1, 2), messageSent, a)
	a.sendUntil(t, wireMsgApp(1, 2, 2, 1, 1, "z"), msgAppSent, b)
}

// TestCloseReleasesStreams: Close ends the streams our handler holds open
// (else the server could not close), and closing twice is safe.
func TestCloseReleasesStreams(t *testing.T) {
	a, b := newHTTPMember(t, 1, nil), newHTTPMember(t, 2, nil)
	a.tr.AddPeer(2, b.srv.URL)
	b.tr.AddPeer(1, a.srv.URL)
	b.sendUntil(t, wireHeartbeat(2, 1, 1), messageSent, a)

	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	closed := make(chan struct{})
	go func() {
		b.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server could not close: a stream handler was left holding its response")
	}
	b.tr.Send([]*raftpb.Message{wireHeartbeat(2, 1, 2)}) // after Close: dropped, no panic
}
