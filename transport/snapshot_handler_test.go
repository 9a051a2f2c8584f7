package transport

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapBody is a POST /raft/snapshot body: m framed as on the message
// stream, then data.
func snapBody(t *testing.T, m *raftpb.Message, data string) []byte {
	t.Helper()
	b, err := appendSized(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, data...)
}

func TestServeSnapshot(t *testing.T) {
	const data = "the db file"
	noMeta := snapMsg(rigPeer, rigLocal, 9)
	noMeta.Snapshot = nil
	tests := []struct {
		name     string
		method   string // POST when empty
		header   func(h http.Header)
		setup    func(tr *HTTP)
		sink     *hashSink // a plain hashSink when nil
		body     []byte    // a MsgSnap from 2 to 1, then data, when nil
		wantCode int
		wantBody string // a prefix of the answer, when not empty
	}{
		{name: "valid", wantCode: http.StatusNoContent},
		{name: "wrong cluster", header: func(h http.Header) { h.Set("X-Etcd-Cluster-ID", "2000") },
			wantCode: http.StatusPreconditionFailed, wantBody: "cluster ID mismatch"},
		{name: "incompatible version", header: func(h http.Header) { h.Set("X-Server-Version", "2.0.0") },
			wantCode: http.StatusPreconditionFailed, wantBody: "incompatible version"},
		{name: "unknown sender", header: func(h http.Header) { h.Set("X-Server-From", "7") },
			body: snapBody(t, snapMsg(7, rigLocal, 9), data), wantCode: http.StatusNotFound},
		{name: "removed member", header: func(h http.Header) { h.Set("X-Server-From", "3") },
			setup: func(tr *HTTP) { tr.AddPeer(3, ""); tr.RemovePeer(3) },
			body:  snapBody(t, snapMsg(3, rigLocal, 9), data), wantCode: http.StatusForbidden},
		{name: "frame over the limit", body: binary.BigEndian.AppendUint64(nil, maxMessageBytes+1),
			wantCode: http.StatusBadRequest, wantBody: "error reading raft message"},
		{name: "largest uint64 length", body: binary.BigEndian.AppendUint64(nil, 1<<64-1),
			wantCode: http.StatusBadRequest, wantBody: "error reading raft message"},
		{name: "empty body", body: []byte{}, wantCode: http.StatusBadRequest},
		{name: "cut in the length", body: []byte{0, 0, 0}, wantCode: http.StatusBadRequest},
		{name: "cut in the message", body: snapBody(t, snapMsg(rigPeer, rigLocal, 9), "")[:20],
			wantCode: http.StatusBadRequest, wantBody: "error reading raft message"},
		{name: "garbage message", body: append(binary.BigEndian.AppendUint64(nil, 3), 0xff, 0xff, 0xff),
			wantCode: http.StatusBadRequest, wantBody: "error unmarshalling raft message"},
		{name: "not a MsgSnap", body: snapBody(t, rigMsgApp(rigPeer, rigLocal, 5), data),
			wantCode: http.StatusBadRequest, wantBody: "wrong raft message type"},
		{name: "to another member", body: snapBody(t, snapMsg(rigPeer, 5, 9), data), wantCode: http.StatusBadRequest},
		{name: "from another member than the sender", body: snapBody(t, snapMsg(3, rigLocal, 9), data),
			wantCode: http.StatusBadRequest},
		{name: "no snapshot metadata", body: snapBody(t, noMeta, data), wantCode: http.StatusBadRequest},
		{name: "GET", method: http.MethodGet, body: []byte{}, wantCode: http.StatusMethodNotAllowed},
		{name: "sink fails", sink: &hashSink{failAfter: 1}, wantCode: http.StatusInternalServerError,
			wantBody: "failed to save the snapshot data: " + errDiskFull.Error()},
		{name: "sink leaves data unread", sink: &hashSink{leave: true}, wantCode: http.StatusInternalServerError,
			wantBody: "failed to save the snapshot data: " + ErrSnapshotUnread.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := tt.sink
			if sink == nil {
				sink = &hashSink{}
			}
			rig := newHandlerRigWith(t, func(c *HTTPConfig) { c.SnapshotSink = sink.sink })
			if tt.setup != nil {
				tt.setup(rig.tr)
			}
			h := peerHeader(rigPeer)
			h.Set("Content-Type", "application/octet-stream")
			if tt.header != nil {
				tt.header(h)
			}
			want := snapMsg(rigPeer, rigLocal, 9)
			body := tt.body
			if body == nil {
				body = snapBody(t, want, data)
			}
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}

			resp, got := rig.request(t, method, "/raft/snapshot", h, body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tt.wantCode)
			}
			if !strings.HasPrefix(got, tt.wantBody) {
				t.Errorf("answer %q, want it to start with %q", got, tt.wantBody)
			}
			// The handler hands the message over before it answers, so
			// the inbox is final once the answer is in.
			inbox := rig.in.all()
			if tt.wantCode != http.StatusNoContent {
				if len(inbox) != 0 {
					t.Errorf("inbox got %v from a refused request", inbox)
				}
				if tt.sink == nil && len(sink.all()) != 0 {
					t.Errorf("the sink was called for a refused request: %+v", sink.all())
				}
				return
			}
			if len(inbox) != 1 || !proto.Equal(inbox[0].(*raftpb.Message), want) {
				t.Fatalf("inbox got %v, want just %v", inbox, want)
			}
			if calls := sink.all(); len(calls) != 1 || calls[0].n != int64(len(data)) || calls[0].index != 9 {
				t.Fatalf("sink calls %+v, want one of %d bytes", calls, len(data))
			}
			if s := rig.tr.Stats()[rigPeer]; s.SnapshotsReceived != 1 || s.SnapshotBytesReceived != uint64(len(data)) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestServeSnapshotWithoutSink: a member without a SnapshotSink does not
// serve the endpoint, and says so in words a sender of ours recognises.
func TestServeSnapshotWithoutSink(t *testing.T) {
	rig := newHandlerRig(t)
	resp, got := rig.request(t, http.MethodPost, "/raft/snapshot", peerHeader(rigPeer), snapBody(t, snapMsg(rigPeer, rigLocal, 9), "x"))
	if resp.StatusCode != http.StatusNotFound || got != ErrSnapshotNotServed.Error()+"\n" {
		t.Fatalf("status %d (%q), want 404 (%q)", resp.StatusCode, got, ErrSnapshotNotServed)
	}
	if inbox := rig.in.all(); len(inbox) != 0 {
		t.Fatalf("inbox got %v", inbox)
	}
}

// FuzzServeSnapshot: whatever body a known peer posts, the handler answers
// 204, 400 or 500 without panicking, and delivers a message only with 204,
// and then only a MsgSnap from that peer to us, after the sink took the
// rest of the body.
func FuzzServeSnapshot(f *testing.F) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	f.Cleanup(sys.Shutdown)
	in := newInboxLog()
	sink := &hashSink{}
	tr, err := NewHTTP(HTTPConfig{ID: rigLocal, ClusterID: rigCluster, System: sys, Inbox: in.inbox, SnapshotSink: sink.sink})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tr.Close() })
	tr.AddPeer(rigPeer, "")
	h := tr.Handler()

	valid, err := appendSized(nil, snapMsg(rigPeer, rigLocal, 9))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(valid, "data"...))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})
	f.Add(frameU64(maxMessageBytes + 1))
	f.Add(frameCat(frameU64(3), []byte{0xff, 0xff, 0xff}))

	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(in.all())
		req := httptest.NewRequest(http.MethodPost, "/raft/snapshot", bytes.NewReader(body))
		req.Header = peerHeader(rigPeer)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		got := in.all()[before:]
		switch w.Code {
		case http.StatusNoContent:
			if len(got) != 1 {
				t.Fatalf("204 with %d messages delivered", len(got))
			}
			m := got[0].(*raftpb.Message)
			if m.GetType() != raftpb.MsgSnap || m.GetFrom() != rigPeer || m.GetTo() != rigLocal {
				t.Fatalf("delivered %v", m)
			}
		case http.StatusBadRequest, http.StatusInternalServerError:
			if len(got) != 0 {
				t.Fatalf("%d with %v delivered", w.Code, got)
			}
		default:
			t.Fatalf("answered %d: %s", w.Code, w.Body)
		}
	})
}
