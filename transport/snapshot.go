package transport

import (
	"errors"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// SnapshotSource opens the state machine data that goes with a MsgSnap sent
// to a peer (the db file of the snapshot m names). The transport reads it to
// its end and closes it, on its own goroutine, while the data goes out: it
// is never held whole in memory. The data must keep coming: a receiver
// gives up on a body that brings nothing for connReadTimeout (5 s, as
// rafthttp). When a transfer is abandoned (the peer was removed, or the
// transport closes) the transport may Close the stream while a Read is
// blocked; Close must then make that Read return, as it does for an
// io.PipeReader or an *os.File.
type SnapshotSource func(m *raftpb.Message) (io.ReadCloser, error)

// SnapshotSink saves the data that came with a MsgSnap from a peer: it reads
// r to its end and returns once the data is durable, or returns an error
// after removing what it wrote. r fails (io.ErrUnexpectedEOF, a timeout, a
// reset) when the transfer is cut short. It must keep reading: a sender
// gives up on a peer that takes nothing for connWriteTimeout (5 s), and
// allows snapshotAnswerTimeout (a minute) after the last byte for the
// final sync. The transport delivers m to the
// inbox only after the sink returned nil, so the state machine finds the
// data when raft hands it the snapshot. Transfers from different peers may
// call it concurrently.
type SnapshotSink func(m *raftpb.Message, r io.Reader) error

var (
	// ErrSnapshotInFlight is a MsgSnap to a peer that is still receiving
	// the previous one: it is dropped and reported failed, and raft sends
	// another when the first is done.
	ErrSnapshotInFlight = errors.New("a snapshot to this peer is already in flight")
	// ErrSnapshotUnread is a sink that returned success before the end of
	// the data: what it kept may be cut short, so the MsgSnap is not
	// delivered and the transfer fails.
	ErrSnapshotUnread = errors.New("the snapshot sink returned before the end of the data")
	// ErrSnapshotNotServed is a member that takes no snapshot data (it has
	// no SnapshotSink): the MsgSnap cannot go to it with its data.
	ErrSnapshotNotServed = errors.New("the member does not take snapshot data")
)

// errNoSnapshotData is a SnapshotSource that returned neither data nor an
// error.
var errNoSnapshotData = errors.New("the snapshot source opened no data")

// checkDrained tells whether the sink left data in r: one more byte is
// proof enough, and reading it costs nothing when r is at its end.
func checkDrained(r io.Reader) error {
	var b [1]byte
	// A reader may return nothing and no error a few times; 100 in a row
	// is what bufio takes for a reader that makes no progress.
	for range 100 {
		n, err := r.Read(b[:])
		switch {
		case n > 0:
			return ErrSnapshotUnread
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
	return io.ErrNoProgress
}

// countingReader counts what a reader yields and keeps its first error
// other than io.EOF, so that a failed transfer can tell a source that broke
// from a peer that went away.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}
