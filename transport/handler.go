package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
)

// Handler serves the peer endpoints: POST /raft (pipeline),
// GET /raft/stream/{msgapp,message}/<from> (streams), POST /raft/snapshot
// (a MsgSnap with its data; 404 without a SnapshotSink) and GET
// /raft/probing. The server it runs in must set neither a WriteTimeout nor
// a ReadTimeout: streams live as long as the connection and a snapshot's
// body as long as it keeps arriving, each with per-write or per-read
// deadlines of its own.
func (t *HTTP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathPipeline, t.servePipeline)
	mux.HandleFunc(pathSnapshot, t.serveSnapshot)
	mux.HandleFunc(pathStreamPrefix, t.serveStream)
	mux.HandleFunc(pathProbing, serveProbing)
	return mux
}

// servePipeline takes one message per POST and answers 204 once it is in
// the raft actor's mailbox.
func (t *HTTP) servePipeline(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set(hdrClusterID, formatID(t.cfg.ClusterID))
	// A removed member hears 403 here, not 410: 403 is what rafthttp's
	// pipeline reads as "you were removed" (its streams read 410).
	from, ok := t.admit(w, r, r.Header.Get(hdrFrom), http.StatusForbidden)
	if !ok {
		return
	}
	b, err := t.readBody(w, r)
	if err != nil {
		t.lg.Warn("bad pipeline request", zap.Uint64("from", from), zap.Error(err))
		http.Error(w, "error reading raft message: "+err.Error(), http.StatusBadRequest)
		return
	}
	m, err := unmarshalMessage(b)
	deliver := false
	if err == nil {
		deliver, err = t.checkAddressing(m, from)
	}
	if err != nil {
		t.lg.Warn("bad pipeline message", zap.Uint64("from", from), zap.Error(err))
		http.Error(w, "error unmarshalling raft message: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p, _ := t.peer(from); p != nil {
		p.stats.received[chanPipeline].Add(1)
		if m.GetType() == raftpb.MsgSnap {
			p.stats.snapsReceived.Add(1)
		}
	}
	if deliver {
		t.cfg.Inbox(m)
	}
	w.WriteHeader(http.StatusNoContent)
}

// readBody reads a pipeline body of at most maxMessageBytes, each read
// under its own deadline so a snapshot that keeps arriving is not cut off.
func (t *HTTP) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	body := http.MaxBytesReader(w, r.Body, maxMessageBytes)
	// Content-Length is a claim: trust it only as far as trustedLength.
	var buf []byte
	if r.ContentLength > 0 {
		buf = make([]byte, 0, min(r.ContentLength, trustedLength))
	}
	chunk := make([]byte, 64<<10)
	for {
		// An unsupported deadline (a test's recorder) only loses the timeout.
		_ = rc.SetReadDeadline(time.Now().Add(connReadTimeout))
		n, err := body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// serveStream attaches the response of a stream request to the peer's
// stream writer, and holds the request open for as long as the writer uses
// it: net/http ends a response when its handler returns.
func (t *HTTP) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set(hdrVersion, protocolVersion)
	w.Header().Set(hdrClusterID, formatID(t.cfg.ClusterID))
	var kind streamKind
	var fromHex string
	switch {
	case strings.HasPrefix(r.URL.Path, pathStreamMsgApp):
		kind, fromHex = streamMsgApp, strings.TrimPrefix(r.URL.Path, pathStreamMsgApp)
	case strings.HasPrefix(r.URL.Path, pathStreamMessage):
		kind, fromHex = streamMessage, strings.TrimPrefix(r.URL.Path, pathStreamMessage)
	default:
		http.Error(w, "invalid path", http.StatusNotFound)
		return
	}
	from, ok := t.admit(w, r, fromHex, http.StatusGone)
	if !ok {
		return
	}
	if to := r.Header.Get(hdrTo); to != formatID(t.cfg.ID) {
		t.lg.Warn("refused a stream meant for another member", zap.Uint64("from", from), headerID("to", to))
		http.Error(w, "to field mismatch", http.StatusPreconditionFailed)
		return
	}
	p, _ := t.peer(from)
	if p == nil {
		http.Error(w, "error sender not found", http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	c := newOutConn(kind, w, rc)
	t.root.Send(p.pid, attachStream{conn: c})
	select {
	case <-c.released:
		return
	case <-r.Context().Done():
	case <-t.closed:
	}
	// The peer went away, or we are closing. If no writer took the
	// connection yet, none will; otherwise wait for the writer to let go.
	if c.abandon() {
		return
	}
	t.root.Send(p.pid, detachStream{conn: c})
	<-c.released
}

// admit runs the checks every peer request gets: compatible versions and
// cluster (412), a sender we know (404) and have not removed (removedStatus).
// It answers the failures itself.
func (t *HTTP) admit(w http.ResponseWriter, r *http.Request, fromHex string, removedStatus int) (uint64, bool) {
	if err := t.checkCompatible(r.Header); err != nil {
		t.lg.Warn("refused an incompatible peer", headerID("from", r.Header.Get(hdrFrom)), zap.String("remote", r.RemoteAddr), zap.Error(err))
		answer412(w, err)
		return 0, false
	}
	from, err := parseID(fromHex)
	if err != nil {
		http.Error(w, "invalid from: "+err.Error(), http.StatusNotFound)
		return 0, false
	}
	p, removed := t.peer(from)
	switch {
	case removed:
		t.lg.Warn("refused a removed member", zap.Uint64("from", from))
		http.Error(w, "removed member", removedStatus)
		return 0, false
	case p == nil:
		t.lg.Debug("refused an unknown member", zap.Uint64("from", from))
		http.Error(w, "error sender not found", http.StatusNotFound)
		return 0, false
	}
	return from, true
}

// checkAddressing refuses a message that is not for this member, or that
// does not come from the peer that sent it: stepping it would let one peer
// speak for another. Three types are the exception, because raft forwards
// them with a From that is not the sender's:
//
//   - a proposal keeps the member that made it, and may be forwarded twice
//     when leadership moves on the way; it can even come back to the member
//     that made it (one it forwarded to a leader that was handing over).
//     No leader reads a proposal's From, so it becomes the sender's: the
//     raft actor tells a peer's message from its own by From, and checks
//     every peer's before raft sees it;
//   - a read-index request keeps the member that made it, which the leader
//     answers; one that names this member (a read it forwarded, handed back
//     after leadership moved) is dropped, not delivered and not an error,
//     and its client retries after its timeout;
//   - a leadership transfer names its transferee there; one that names
//     this member is dropped (a transfer to the member that leads already).
func (t *HTTP) checkAddressing(m *raftpb.Message, from uint64) (deliver bool, err error) {
	if m.GetTo() != t.cfg.ID {
		return false, fmt.Errorf("%w: %s from %d to %d on a request from %d to %d",
			ErrBadFrame, m.GetType(), m.GetFrom(), m.GetTo(), from, t.cfg.ID)
	}
	switch m.GetType() {
	case raftpb.MsgProp:
		m.From = new(from)
		return true, nil
	case raftpb.MsgReadIndex, raftpb.MsgTransferLeader:
		switch f := m.GetFrom(); {
		case f == t.cfg.ID:
			t.lg.Debug("dropped a forwarded message that names this member", zap.Stringer("type", m.GetType()), zap.Uint64("from", from))
			return false, nil
		case f == 0 || raft.IsLocalMsgTarget(f):
			return false, fmt.Errorf("%w: forwarded %s names %d as its sender", ErrBadFrame, m.GetType(), f)
		}
		return true, nil
	}
	if m.GetFrom() != from {
		return false, fmt.Errorf("%w: %s from %d to %d on a request from %d to %d",
			ErrBadFrame, m.GetType(), m.GetFrom(), m.GetTo(), from, t.cfg.ID)
	}
	return true, nil
}

// serveProbing answers rafthttp's health probe.
func serveProbing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		OK  bool
		Now time.Time
	}{true, time.Now()})
}

// headerID logs a member id a peer sent (hex, as rafthttp writes it) in
// decimal, as the log gives ids; text that is no id is logged quoted and
// cut short.
func headerID(key, s string) zap.Field {
	if id, err := parseID(s); err == nil {
		return zap.Uint64(key, id)
	}
	return zap.String(key, redact.KeyString(s))
}
