package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// errTransferOver ends the pipe of a snapshot body once the POST is over,
// which stops a copier still writing into it.
var errTransferOver = errors.New("the snapshot transfer is over")

// snapshotBody is the body of one POST /raft/snapshot: the MsgSnap framed as
// on the message stream, then the source's data, as rafthttp's
// createSnapBody. A goroutine of its own copies both into a pipe that the
// HTTP client reads, so memory holds one copy buffer, never the data. The
// source is read only by that goroutine and closed once it is done, so a
// Close races a Read only when the transfer is abandoned, as
// SnapshotSource allows; handing the source to net/http instead would let
// it read the source after the request returned.
type snapshotBody struct {
	ctx  context.Context
	pr   *io.PipeReader
	pw   *io.PipeWriter
	src  io.ReadCloser
	data countingReader // src, counted; only the copier uses it until done
	done chan struct{}
	// panicked is what the source panicked with, if it did; read after done.
	panicked any
	// unwatch stops the watch on ctx.
	unwatch func() bool
}

// newSnapshotBody starts copying frame and then src into the pipe whose
// reading end is b.pr. When ctx ends, so does the pipe: net/http waits for
// the request body to stop being read before it returns an error, and a
// source blocked in Read would otherwise hold up the cancellation.
func newSnapshotBody(ctx context.Context, frame []byte, src io.ReadCloser) *snapshotBody {
	pr, pw := io.Pipe()
	b := &snapshotBody{ctx: ctx, pr: pr, pw: pw, src: src, data: countingReader{r: src}, done: make(chan struct{})}
	b.unwatch = context.AfterFunc(ctx, func() {
		pr.CloseWithError(fmt.Errorf("snapshot transfer abandoned: %w", context.Cause(ctx)))
	})
	go b.copy(frame)
	return b
}

func (b *snapshotBody) copy(frame []byte) {
	defer close(b.done)
	defer func() {
		// The source is the state machine's code running on our goroutine:
		// a panic there must not take the process down unannounced.
		if r := recover(); r != nil {
			b.panicked = r
			b.pw.CloseWithError(fmt.Errorf("snapshot source panicked: %v", r))
		}
	}()
	_, err := io.Copy(b.pw, io.MultiReader(bytes.NewReader(frame), &b.data))
	b.pw.CloseWithError(err) // nil: the HTTP client reads io.EOF
}

// finish ends the transfer once the POST is over: it stops the copier,
// waits until it is done with the source, and closes the source. A source
// blocked in Read is waited for; it is closed under the Read only when ctx
// ends (the peer removed or the transport closing), as SnapshotSource
// allows. It returns the data bytes read, the source's failure if reading
// it failed (or panicked), and the error of its Close.
func (b *snapshotBody) finish() (n int64, readErr, closeErr error) {
	b.unwatch()
	b.pr.CloseWithError(errTransferOver)
	closed := false
	select {
	case <-b.done:
	default:
		select {
		case <-b.done:
		case <-b.ctx.Done():
			closeErr, closed = b.src.Close(), true
			<-b.done
		}
	}
	if !closed {
		closeErr = b.src.Close()
	}
	switch {
	case b.panicked != nil:
		readErr = fmt.Errorf("snapshot source panicked: %v", b.panicked)
	case b.data.err != nil:
		readErr = fmt.Errorf("read the snapshot data: %w", b.data.err)
	}
	return b.data.n, readErr, closeErr
}
