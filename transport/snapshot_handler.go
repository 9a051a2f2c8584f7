package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// serveSnapshot takes a MsgSnap followed by its state machine data, as
// rafthttp's snapshotHandler does: the body is the message framed as on the
// message stream, then the data, which goes to the SnapshotSink as it
// arrives, never whole in memory. It answers 204 once the sink has made the
// data durable and the message is in the raft actor's mailbox.
func (t *HTTP) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if t.cfg.SnapshotSink == nil {
		http.Error(w, ErrSnapshotNotServed.Error(), http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set(hdrClusterID, formatID(t.cfg.ClusterID))
	from, ok := t.admit(w, r, r.Header.Get(hdrFrom), http.StatusForbidden)
	if !ok {
		return
	}
	lg := t.lg.With(zap.Uint64("from", from))
	body := &deadlineReader{r: r.Body, rc: http.NewResponseController(w)}
	m, err := t.readSnapshotMessage(body, from)
	if err != nil {
		t.snapshotFailed(from)
		lg.Warn("bad snapshot request", zap.Error(err))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	lg = lg.With(zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
	start, header := time.Now(), body.n
	if err := t.cfg.SnapshotSink(m, body); err != nil {
		t.snapshotFailed(from)
		lg.Warn("failed to receive a snapshot", zap.Int64("bytes", body.n-header), zap.Error(err))
		http.Error(w, "failed to save the snapshot data: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err := checkDrained(body); err != nil {
		// The sink kept what it read: only its owner can clean that up.
		t.snapshotFailed(from)
		lg.Error("the snapshot sink did not take all the data", zap.Error(err))
		http.Error(w, "failed to save the snapshot data: "+err.Error(), http.StatusInternalServerError)
		return
	}
	n := body.n - header
	if p, _ := t.peer(from); p != nil {
		p.stats.snapsReceived.Add(1)
		p.stats.snapBytesRcv.Add(uint64(n))
	}
	lg.Info("received a snapshot", zap.Int64("bytes", n), zap.Duration("took", time.Since(start)))
	t.cfg.Inbox(m)
	w.WriteHeader(http.StatusNoContent)
}

// readSnapshotMessage reads the framed MsgSnap at the start of a snapshot
// body and checks that it is one, for this member, from the sender.
func (t *HTTP) readSnapshotMessage(body io.Reader, from uint64) (*raftpb.Message, error) {
	b, err := readSized(body)
	if err != nil {
		return nil, fmt.Errorf("error reading raft message: %w", midFrame(err))
	}
	m, err := unmarshalMessage(b)
	if err != nil {
		return nil, fmt.Errorf("error unmarshalling raft message: %w", err)
	}
	if m.GetType() != raftpb.MsgSnap {
		// rafthttp's words, which its peers log.
		return nil, fmt.Errorf("wrong raft message type: %w: %s", ErrBadFrame, m.GetType())
	}
	if m.GetSnapshot().GetMetadata() == nil {
		return nil, fmt.Errorf("%w: MsgSnap without snapshot metadata", ErrBadFrame)
	}
	if _, err := t.checkAddressing(m, from); err != nil {
		return nil, err
	}
	return m, nil
}

// snapshotFailed counts a failed transfer from peer from.
func (t *HTTP) snapshotFailed(from uint64) {
	if p, _ := t.peer(from); p != nil {
		p.stats.snapsFailed.Add(1)
	}
}

// deadlineReader reads a request body under a fresh read deadline before
// each Read, as readBody does: a transfer that keeps moving takes as long as
// it needs, one that stalls ends within connReadTimeout. It counts what it
// read.
type deadlineReader struct {
	r  io.Reader
	rc *http.ResponseController
	n  int64
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	// An unsupported deadline (a test's recorder) only loses the timeout.
	_ = d.rc.SetReadDeadline(time.Now().Add(connReadTimeout))
	n, err := d.r.Read(b)
	d.n += int64(n)
	if errors.Is(err, io.EOF) {
		// The sink may take long to make the data durable after the last
		// byte. Meanwhile net/http reads the connection to notice a client
		// that goes away; under our deadline that read would time out and
		// cancel the request.
		_ = d.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
