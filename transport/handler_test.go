package transport

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
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

// The member under test is 1 in cluster 0x1000; member 2 is known to it
// but has no URL, so it never dials 2 and nothing reaches its inbox unless
// a request of the test's carries it.
const (
	rigLocal   uint64 = 1
	rigPeer    uint64 = 2
	rigCluster uint64 = 0x1000
)

// inboxLog records what the transport hands the local member, and signals
// each arrival so that a test can wait for one without sleeping.
type inboxLog struct {
	mu      sync.Mutex
	got     []any
	changed chan struct{}
}

func newInboxLog() *inboxLog { return &inboxLog{changed: make(chan struct{}, 1)} }

func (l *inboxLog) inbox(m any) {
	l.mu.Lock()
	l.got = append(l.got, m)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default: // a signal is already pending; the waiter rereads everything
	}
}

func (l *inboxLog) all() []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// count is how many recorded messages equal want.
func (l *inboxLog) count(want any) int {
	n := 0
	for _, m := range l.all() {
		if m == want {
			n++
		}
	}
	return n
}

// waitFor waits until the inbox holds want, failing after a few seconds.
func (l *inboxLog) waitFor(t *testing.T, want any) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for l.count(want) == 0 {
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("inbox never got %#v; it has %v", want, l.all())
		}
	}
}

// handlerRig is the HTTP transport of member 1 served by an httptest
// server; the test plays member 2 with hand-made requests.
type handlerRig struct {
	tr  *HTTP
	srv *httptest.Server
	in  *inboxLog
}

func newHandlerRig(t *testing.T) *handlerRig { t.Helper(); return newHandlerRigWith(t, nil) }

// newHandlerRigWith is newHandlerRig with a config that tune edits first.
func newHandlerRigWith(t *testing.T, tune func(*HTTPConfig)) *handlerRig {
	t.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	in := newInboxLog()
	cfg := HTTPConfig{
		ID: rigLocal, ClusterID: rigCluster, System: system, Inbox: in.inbox,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	if tune != nil {
		tune(&cfg)
	}
	tr, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	// Runs before srv.Close: closing the transport ends the streams its
	// handler holds open, which srv.Close waits for.
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	tr.AddPeer(rigPeer, "")
	return &handlerRig{tr: tr, srv: srv, in: in}
}

// peerHeader is what an etcd 3.7 member `from` of our cluster sends. The
// names are spelled out rather than taken from wire.go, so that a renamed
// constant fails here.
func peerHeader(from uint64) http.Header {
	h := http.Header{}
	h.Set("X-Server-From", formatID(from))
	h.Set("X-Server-Version", "3.7.0")
	h.Set("X-Min-Cluster-Version", "3.0.0")
	h.Set("X-Etcd-Cluster-ID", "1000")
	return h
}

// request sends one request and reads the whole answer. The deadline turns
// a stream accepted by mistake, which would never end, into a failure.
func (r *handlerRig) request(t *testing.T, method, path string, h http.Header, body []byte) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp, string(b)
}

func marshalled(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rigMsgApp(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: new(from), To: new(to),
		Term: new(uint64(3)), LogTerm: new(uint64(3)), Index: new(index), Commit: new(index),
		Entries: []*raftpb.Entry{{Term: new(uint64(3)), Index: new(index + 1), Data: []byte("x")}},
	}
}

func TestServePipeline(t *testing.T) {
	tests := []struct {
		name     string
		method   string              // POST when empty
		header   func(h http.Header) // edits member 2's valid headers
		setup    func(tr *HTTP)
		body     []byte // a MsgApp from 2 to 1 when nil
		wantCode int
		wantBody string // checked when not empty: rafthttp parses 412 bodies
		deliver  bool
	}{
		{name: "valid", wantCode: http.StatusNoContent, deliver: true},
		{name: "newer peer that still accepts us", header: func(h http.Header) { h.Set("X-Server-Version", "3.9.1") },
			wantCode: http.StatusNoContent, deliver: true},
		{name: "min cluster version equal to ours but for the patch",
			header: func(h http.Header) { h.Set("X-Min-Cluster-Version", "3.7.9") }, wantCode: http.StatusNoContent, deliver: true},
		{name: "wrong cluster", header: func(h http.Header) { h.Set("X-Etcd-Cluster-ID", "2000") },
			wantCode: http.StatusPreconditionFailed, wantBody: "cluster ID mismatch\n"},
		{name: "no cluster", header: func(h http.Header) { h.Del("X-Etcd-Cluster-ID") },
			wantCode: http.StatusPreconditionFailed, wantBody: "cluster ID mismatch\n"},
		{name: "server version 2.0.0", header: func(h http.Header) { h.Set("X-Server-Version", "2.0.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "no server version means 2.0.0", header: func(h http.Header) { h.Del("X-Server-Version") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "min cluster version 9.0.0", header: func(h http.Header) { h.Set("X-Min-Cluster-Version", "9.0.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "min cluster version one minor above ours", header: func(h http.Header) { h.Set("X-Min-Cluster-Version", "3.8.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "malformed server version", header: func(h http.Header) { h.Set("X-Server-Version", "three.seven") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "server version without patch", header: func(h http.Header) { h.Set("X-Server-Version", "3.7") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "server version with a v", header: func(h http.Header) { h.Set("X-Server-Version", "v3.7.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "malformed min cluster version", header: func(h http.Header) { h.Set("X-Min-Cluster-Version", "3.x.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		// rafthttp checks the version first, so its peers see that reason.
		{name: "incompatible and wrong cluster", header: func(h http.Header) {
			h.Set("X-Server-Version", "2.0.0")
			h.Set("X-Etcd-Cluster-ID", "2000")
		}, wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "unknown sender", header: func(h http.Header) { h.Set("X-Server-From", "7") },
			body: marshalled(t, rigMsgApp(7, rigLocal, 5)), wantCode: http.StatusNotFound},
		{name: "no sender", header: func(h http.Header) { h.Del("X-Server-From") }, wantCode: http.StatusNotFound},
		// 403, as etcd's pipeline answers it and rafthttp's reads it.
		{name: "removed member", header: func(h http.Header) { h.Set("X-Server-From", "3") },
			setup: func(tr *HTTP) { tr.AddPeer(3, ""); tr.RemovePeer(3) },
			body:  marshalled(t, rigMsgApp(3, rigLocal, 5)), wantCode: http.StatusForbidden},
		{name: "garbage body", body: []byte{0xff, 0xff, 0xff}, wantCode: http.StatusBadRequest},
		{name: "empty body", body: []byte{}, wantCode: http.StatusBadRequest},
		{name: "message from another member than the sender", body: marshalled(t, rigMsgApp(3, rigLocal, 5)),
			wantCode: http.StatusBadRequest},
		{name: "message to another member", body: marshalled(t, rigMsgApp(rigPeer, 5, 5)),
			wantCode: http.StatusBadRequest},
		{name: "GET", method: http.MethodGet, body: []byte{}, wantCode: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newHandlerRig(t)
			if tt.setup != nil {
				tt.setup(rig.tr)
			}
			h := peerHeader(rigPeer)
			h.Set("Content-Type", "application/protobuf")
			if tt.header != nil {
				tt.header(h)
			}
			want := rigMsgApp(rigPeer, rigLocal, 5)
			body := tt.body
			if body == nil {
				body = marshalled(t, want)
			}
			method := cmp.Or(tt.method, http.MethodPost)

			resp, got := rig.request(t, method, "/raft", h, body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tt.wantCode)
			}
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
			if tt.wantCode == http.StatusMethodNotAllowed {
				if allow := resp.Header.Get("Allow"); allow != http.MethodPost {
					t.Errorf("Allow: %q, want POST", allow)
				}
				return
			}
			if id := resp.Header.Get("X-Etcd-Cluster-ID"); id != "1000" {
				t.Errorf("X-Etcd-Cluster-ID: %q, want 1000", id)
			}

			// The handler hands the message over before it answers, so
			// the inbox is final once the answer is in.
			inbox := rig.in.all()
			if !tt.deliver {
				if len(inbox) != 0 {
					t.Errorf("inbox got %v from a refused request", inbox)
				}
				return
			}
			if len(inbox) != 1 || !proto.Equal(inbox[0].(*raftpb.Message), want) {
				t.Fatalf("inbox got %v, want just %v", inbox, want)
			}
			if got := rig.tr.Stats()[rigPeer].Pipeline.Received; got != 1 {
				t.Errorf("Stats Pipeline.Received = %d, want 1", got)
			}
		})
	}
}

func TestServeStreamRefusals(t *testing.T) {
	tests := []struct {
		name     string
		method   string // GET when empty
		path     string
		header   func(h http.Header)
		setup    func(tr *HTTP)
		wantCode int
		wantBody string
	}{
		{name: "message: wrong X-Raft-To", path: "/raft/stream/message/2",
			header: func(h http.Header) { h.Set("X-Raft-To", "3") }, wantCode: http.StatusPreconditionFailed},
		{name: "msgapp: wrong X-Raft-To", path: "/raft/stream/msgapp/2",
			header: func(h http.Header) { h.Set("X-Raft-To", "3") }, wantCode: http.StatusPreconditionFailed},
		{name: "message: no X-Raft-To", path: "/raft/stream/message/2",
			header: func(h http.Header) { h.Del("X-Raft-To") }, wantCode: http.StatusPreconditionFailed},
		{name: "message: unknown sender", path: "/raft/stream/message/7",
			header: func(h http.Header) { h.Set("X-Server-From", "7") }, wantCode: http.StatusNotFound},
		{name: "msgapp: unknown sender", path: "/raft/stream/msgapp/7",
			header: func(h http.Header) { h.Set("X-Server-From", "7") }, wantCode: http.StatusNotFound},
		{name: "message: removed member", path: "/raft/stream/message/3",
			header: func(h http.Header) { h.Set("X-Server-From", "3") },
			setup:  func(tr *HTTP) { tr.AddPeer(3, ""); tr.RemovePeer(3) }, wantCode: http.StatusGone},
		{name: "msgapp: removed member", path: "/raft/stream/msgapp/3",
			header: func(h http.Header) { h.Set("X-Server-From", "3") },
			setup:  func(tr *HTTP) { tr.AddPeer(3, ""); tr.RemovePeer(3) }, wantCode: http.StatusGone},
		{name: "unknown stream type", path: "/raft/stream/foo/2", wantCode: http.StatusNotFound},
		{name: "sender not hex", path: "/raft/stream/message/zz", wantCode: http.StatusNotFound},
		{name: "no sender in the path", path: "/raft/stream/message/", wantCode: http.StatusNotFound},
		{name: "message: wrong cluster", path: "/raft/stream/message/2",
			header:   func(h http.Header) { h.Set("X-Etcd-Cluster-ID", "2000") },
			wantCode: http.StatusPreconditionFailed, wantBody: "cluster ID mismatch\n"},
		{name: "msgapp: incompatible version", path: "/raft/stream/msgapp/2",
			header:   func(h http.Header) { h.Set("X-Min-Cluster-Version", "9.0.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "message: malformed version", path: "/raft/stream/message/2",
			header:   func(h http.Header) { h.Set("X-Server-Version", "3.7") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version\n"},
		{name: "POST", method: http.MethodPost, path: "/raft/stream/message/2", wantCode: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newHandlerRig(t)
			if tt.setup != nil {
				tt.setup(rig.tr)
			}
			h := peerHeader(rigPeer)
			h.Set("X-Raft-To", formatID(rigLocal))
			if tt.header != nil {
				tt.header(h)
			}
			resp, got := rig.request(t, cmp.Or(tt.method, http.MethodGet), tt.path, h, nil)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tt.wantCode)
			}
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
			if tt.wantCode == http.StatusMethodNotAllowed {
				if allow := resp.Header.Get("Allow"); allow != http.MethodGet {
					t.Errorf("Allow: %q, want GET", allow)
				}
				return
			}
			// An etcd stream reader reads the version off every answer, a
			// refusal too; without it, it assumes 2.0.0 and reports an
			// unsupported stream type instead of the status.
			if v := resp.Header.Get("X-Server-Version"); v != "3.7.0" {
				t.Errorf("X-Server-Version: %q, want 3.7.0", v)
			}
			if inbox := rig.in.all(); len(inbox) != 0 {
				t.Errorf("inbox got %v from a refused stream", inbox)
			}
		})
	}
}

// streamKindCase is what differs between the two streams in the tests of
// an accepted stream.
type streamKindCase struct {
	name    string
	path    string
	decoder func(r io.Reader) decoder
	// message builds the i-th message to send: one the stream carries.
	message func(i uint64) *raftpb.Message
	stats   func(PeerStats) ChannelStats
}

func streamKindCases() []streamKindCase {
	return []streamKindCase{
		{
			name:    "message",
			path:    "/raft/stream/message/2",
			decoder: func(r io.Reader) decoder { return &messageDecoder{r: r} },
			message: func(i uint64) *raftpb.Message {
				return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(rigLocal), To: new(rigPeer),
					Term: new(uint64(3)), Commit: new(i)}
			},
			stats: func(s PeerStats) ChannelStats { return s.Message },
		},
		{
			name: "msgapp",
			path: "/raft/stream/msgapp/2",
			// The test is member 2 reading what member 1 writes.
			decoder: func(r io.Reader) decoder { return &msgAppDecoder{r: r, local: rigPeer, remote: rigLocal} },
			message: func(i uint64) *raftpb.Message { return rigMsgApp(rigLocal, rigPeer, i) },
			stats:   func(s PeerStats) ChannelStats { return s.MsgApp },
		},
	}
}

type decoded struct {
	m   *raftpb.Message
	err error
}

// openedStream is a stream member 2 opened to member 1, with a goroutine
// decoding its frames into frames until the body ends or close is called.
type openedStream struct {
	resp   *http.Response
	frames chan decoded
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func openStream(t *testing.T, rig *handlerRig, kc streamKindCase) *openedStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rig.srv.URL+kc.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = peerHeader(rigPeer)
	req.Header.Set("X-Raft-To", formatID(rigLocal))
	resp, err := rig.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &openedStream{resp: resp, frames: make(chan decoded), quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		close(s.done)
		t.Fatalf("stream answered %d (%q), want 200", resp.StatusCode, b)
	}
	dec := kc.decoder(resp.Body)
	go func() {
		defer close(s.done)
		for {
			m, err := dec.decode()
			select {
			case s.frames <- decoded{m, err}:
			case <-s.quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// close hangs up, as a peer that goes away does, and waits for the
// decoding goroutine.
func (s *openedStream) close() {
	s.once.Do(func() {
		close(s.quit)
		s.resp.Body.Close()
		<-s.done
	})
}

// next returns the next frame that is not a link heartbeat.
func (s *openedStream) next(t *testing.T) *raftpb.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-s.frames:
			if f.err != nil {
				t.Fatalf("stream ended: %v", f.err)
			}
			if !isLinkHeartbeat(f.m) {
				return f.m
			}
		case <-deadline:
			t.Fatal("no message on the stream")
		}
	}
}

// sendUntilStreamed sends messages until one arrives on the stream, and
// checks it is the one sent. The writer takes a stream asynchronously, so
// the first messages may go by the pipeline, which for a member without a
// URL fails at once and reports it: each message has exactly one of the
// two outcomes, which is what this waits for.
func sendUntilStreamed(t *testing.T, rig *handlerRig, s *openedStream, kc streamKindCase) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for i := uint64(1); ; i++ {
		m := kc.message(i)
		unreachable := rig.in.count(messages.ReportUnreachable{ID: rigPeer})
		rig.tr.Send([]*raftpb.Message{proto.Clone(m).(*raftpb.Message)})
		for outcome := false; !outcome; {
			select {
			case f := <-s.frames:
				if f.err != nil {
					t.Fatalf("stream ended: %v", f.err)
				}
				if isLinkHeartbeat(f.m) {
					continue
				}
				if !proto.Equal(f.m, m) {
					t.Fatalf("stream carried %v, want %v", f.m, m)
				}
				return
			case <-rig.in.changed:
				outcome = rig.in.count(messages.ReportUnreachable{ID: rigPeer}) > unreachable
			case <-deadline:
				t.Fatal("no message went by the stream")
			}
		}
	}
}

func TestServeStream(t *testing.T) {
	for _, kc := range streamKindCases() {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel() // each waits most of a heartbeat interval
			rig := newHandlerRig(t)
			s := openStream(t, rig, kc)
			if v := s.resp.Header.Get("X-Server-Version"); v != "3.7.0" {
				t.Errorf("X-Server-Version: %q, want 3.7.0", v)
			}
			if id := s.resp.Header.Get("X-Etcd-Cluster-ID"); id != "1000" {
				t.Errorf("X-Etcd-Cluster-ID: %q, want 1000", id)
			}

			sendUntilStreamed(t, rig, s, kc)
			if st := kc.stats(rig.tr.Stats()[rigPeer]); st.Sent != 1 {
				t.Errorf("the stream's Sent = %d, want 1", st.Sent)
			}

			// A snapshot goes by the pipeline even while the stream is
			// up: the message sent after it is the next one on the stream.
			snap := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(rigLocal), To: new(rigPeer), Term: new(uint64(3)),
				Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9)), Term: new(uint64(3))}}}
			after := kc.message(100)
			rig.tr.Send([]*raftpb.Message{snap, proto.Clone(after).(*raftpb.Message)})
			if got := s.next(t); !proto.Equal(got, after) {
				t.Errorf("after a MsgSnap the stream carried %v, want %v", got, after)
			}
			rig.in.waitFor(t, messages.ReportSnapshot{ID: rigPeer, Status: raft.SnapshotFailure})

			// An idle stream carries link heartbeats.
			deadline := time.After(3 * heartbeatInterval)
		beat:
			for {
				select {
				case f := <-s.frames:
					if f.err != nil {
						t.Fatalf("stream ended while waiting for a heartbeat: %v", f.err)
					}
					if !isLinkHeartbeat(f.m) {
						t.Fatalf("idle stream carried %v", f.m)
					}
					break beat
				case <-deadline:
					t.Fatalf("no link heartbeat within %v", 3*heartbeatInterval)
				}
			}

			// Once the peer hangs up, the writer must let go of the stream:
			// messages fall back to the pipeline, which fails for a member
			// without a URL and says so.
			s.close()
			failed := rig.tr.Stats()[rigPeer].Pipeline.Failed
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			giveUp := time.After(5 * time.Second)
			for i := uint64(200); rig.tr.Stats()[rigPeer].Pipeline.Failed <= failed; i++ {
				rig.tr.Send([]*raftpb.Message{kc.message(i)})
				select {
				case <-tick.C:
				case <-giveUp:
					t.Fatalf("messages still not by the pipeline after the peer hung up; stats %+v", rig.tr.Stats()[rigPeer])
				}
			}
			rig.in.waitFor(t, messages.ReportUnreachable{ID: rigPeer})
		})
	}
}

// TestServeStreamRedial: a peer that opens a stream again has given up on
// the old one, so the old response must end and the new one carry the
// messages.
func TestServeStreamRedial(t *testing.T) {
	for _, kc := range streamKindCases() {
		t.Run(kc.name, func(t *testing.T) {
			rig := newHandlerRig(t)
			old := openStream(t, rig, kc)
			sendUntilStreamed(t, rig, old, kc)

			fresh := openStream(t, rig, kc)
			deadline := time.After(5 * time.Second)
		ended:
			for {
				select {
				case f := <-old.frames:
					if f.err == nil && isLinkHeartbeat(f.m) {
						continue
					}
					if !errors.Is(f.err, io.EOF) {
						t.Fatalf("old stream: got %v, %v; want it to end with io.EOF", f.m, f.err)
					}
					break ended
				case <-deadline:
					t.Fatal("the old stream never ended")
				}
			}
			sendUntilStreamed(t, rig, fresh, kc)
		})
	}
}

func TestServeProbing(t *testing.T) {
	rig := newHandlerRig(t)
	resp, body := rig.request(t, http.MethodGet, "/raft/probing", http.Header{}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	// etcd's prober decodes {OK bool; Now time.Time}.
	var health map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &health); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if ok := string(health["OK"]); ok != "true" {
		t.Errorf(`"OK" is %q in %s, want true`, ok, body)
	}
	var now time.Time
	if err := json.Unmarshal(health["Now"], &now); err != nil || now.IsZero() {
		t.Errorf(`"Now" is %q in %s: %v`, health["Now"], body, err)
	}
}

// raft forwards proposals, read-index requests and transfers of leadership
// with a From that is not the sender: they are delivered, unless From names
// this member (dropped, no error) or no member at all (refused).
func TestServePipelineForwarded(t *testing.T) {
	msg := func(typ raftpb.MessageType, from uint64) *raftpb.Message {
		m := &raftpb.Message{Type: typ.Enum(), From: new(from), To: new(uint64(rigLocal))}
		if typ != raftpb.MsgTransferLeader {
			m.Entries = []*raftpb.Entry{{Data: []byte("x")}}
		}
		return m
	}
	// A proposal is delivered as the sender's, whoever made it.
	fromSender := func(m *raftpb.Message) *raftpb.Message {
		c := proto.Clone(m).(*raftpb.Message)
		c.From = new(uint64(rigPeer))
		return c
	}
	tests := []struct {
		name     string
		m        *raftpb.Message
		wantCode int
		want     *raftpb.Message // delivered; nil for none
	}{
		{"a proposal forwarded twice", msg(raftpb.MsgProp, 3), http.StatusNoContent, fromSender(msg(raftpb.MsgProp, 3))},
		{"a proposal handed back to its member", msg(raftpb.MsgProp, rigLocal), http.StatusNoContent, fromSender(msg(raftpb.MsgProp, 3))},
		{"a proposal naming raft's append thread", msg(raftpb.MsgProp, raft.LocalAppendThread), http.StatusNoContent, fromSender(msg(raftpb.MsgProp, 3))},
		{"a read forwarded twice", msg(raftpb.MsgReadIndex, 3), http.StatusNoContent, msg(raftpb.MsgReadIndex, 3)},
		{"a transfer naming its transferee", msg(raftpb.MsgTransferLeader, 3), http.StatusNoContent, msg(raftpb.MsgTransferLeader, 3)},
		{"a read handed back to its member", msg(raftpb.MsgReadIndex, rigLocal), http.StatusNoContent, nil},
		{"a read from nobody", msg(raftpb.MsgReadIndex, 0), http.StatusBadRequest, nil},
		{"a read from raft's append thread", msg(raftpb.MsgReadIndex, raft.LocalAppendThread), http.StatusBadRequest, nil},
		{"a vote in another's name", msg(raftpb.MsgVote, 3), http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newHandlerRig(t)
			h := peerHeader(rigPeer)
			h.Set("Content-Type", "application/protobuf")
			resp, got := rig.request(t, http.MethodPost, "/raft", h, marshalled(t, tt.m))
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tt.wantCode)
			}
			inbox := rig.in.all()
			switch {
			case tt.want == nil && len(inbox) != 0:
				t.Fatalf("inbox %v, want nothing delivered", inbox)
			case tt.want != nil && (len(inbox) != 1 || !proto.Equal(inbox[0].(*raftpb.Message), tt.want)):
				t.Fatalf("inbox %v, want just %v", inbox, tt.want)
			}
		})
	}
}
