package transport

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// streamKind names the two streams of a peer.
type streamKind int

const (
	streamMsgApp  streamKind = iota // msgappv2: MsgApp only, the leader's replication path
	streamMessage                   // every other message
)

func (k streamKind) String() string {
	if k == streamMsgApp {
		return "msgappv2"
	}
	return "message"
}

func (k streamKind) path() string {
	if k == streamMsgApp {
		return pathStreamMsgApp
	}
	return pathStreamMessage
}

// outConn is the response of a stream request that a peer made to us: the
// peer reads what we write into it. The handler goroutine that owns the
// response waits until the writer releases it.
type outConn struct {
	kind     streamKind
	w        http.ResponseWriter
	rc       *http.ResponseController
	state    atomic.Int32 // connNew, then connTaken by a writer or connAbandoned by the handler
	released chan struct{}
	once     sync.Once
}

const (
	connNew int32 = iota
	connTaken
	connAbandoned
)

func newOutConn(kind streamKind, w http.ResponseWriter, rc *http.ResponseController) *outConn {
	return &outConn{kind: kind, w: w, rc: rc, released: make(chan struct{})}
}

// take gives the connection to a writer, unless the handler gave up on it.
func (c *outConn) take() bool { return c.state.CompareAndSwap(connNew, connTaken) }

// abandon tells whether the handler may return at once: no writer took it.
func (c *outConn) abandon() bool { return c.state.CompareAndSwap(connNew, connAbandoned) }

func (c *outConn) release() { c.once.Do(func() { close(c.released) }) }

// Write gives each write its own deadline: a peer that stops reading is
// found out within connWriteTimeout.
func (c *outConn) Write(b []byte) (int, error) {
	// A response writer without deadlines (a test recorder) just has none.
	_ = c.rc.SetWriteDeadline(time.Now().Add(connWriteTimeout))
	return c.w.Write(b)
}

// Messages of a stream writer.
type (
	attachStream struct{ conn *outConn } // handler → peer → writer: a peer opened this stream
	detachStream struct{ conn *outConn } // handler → peer → writer: the peer went away
	streamState  struct {                // writer → peer: whether the stream can carry messages
		kind streamKind
		up   bool
	}
	flushStream    struct{}                // writer → itself: the messages queued before it are written
	heartbeatTimer struct{ conn *outConn } // timer → writer
)

// streamWriter writes one stream to one peer. It flushes once per wave of
// messages: the first message after a flush queues a flushStream marker
// behind itself, so every message already in the mailbox shares the flush.
type streamWriter struct {
	kind        streamKind
	t           *HTTP
	life        *peerLife
	peer        *peerRef
	conn        *outConn
	enc         encoder
	flushQueued bool
	beat        *time.Timer
}

func newStreamWriter(t *HTTP, life *peerLife, kind streamKind) *streamWriter {
	return &streamWriter{kind: kind, t: t, life: life, peer: life.peer}
}

// Receive implements actor.Actor.
func (w *streamWriter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case attachStream:
		w.attach(ctx, m.conn)
	case detachStream:
		if m.conn == w.conn {
			w.close(ctx, "the peer closed the stream")
		}
	case *raftpb.Message:
		w.write(ctx, m)
	case flushStream:
		w.flushQueued = false
		if w.conn != nil {
			if err := w.conn.rc.Flush(); err != nil {
				w.fail(ctx, "flush", err)
			}
		}
	case heartbeatTimer:
		if m.conn != w.conn {
			return // a timer of an earlier connection
		}
		if err := w.enc.heartbeat(); err != nil {
			w.fail(ctx, "heartbeat", err)
			return
		}
		if err := w.conn.rc.Flush(); err != nil {
			w.fail(ctx, "heartbeat", err)
			return
		}
		w.armHeartbeat(ctx)
	case *actor.Stopping:
		// The peer actor is stopping too: no one to tell.
		w.release("stopping")
	}
}

func (w *streamWriter) attach(ctx actor.Context, c *outConn) {
	if !c.take() {
		return // the handler already gave up on it
	}
	// A peer that dials again has given up on its earlier stream.
	w.release("the peer opened a new stream")
	w.conn = c
	w.peer.active.connected(time.Now())
	if w.kind == streamMsgApp {
		w.enc = &msgAppEncoder{w: c}
	} else {
		w.enc = &messageEncoder{w: c}
	}
	w.armHeartbeat(ctx)
	ctx.Send(ctx.Parent(), streamState{kind: w.kind, up: true})
	w.t.lg.Debug("stream attached", zap.Uint64("peer", w.peer.id), zap.Stringer("stream", w.kind))
}

func (w *streamWriter) write(ctx actor.Context, m *raftpb.Message) {
	defer w.life.done(m)
	if w.conn == nil {
		// The stream went down after the peer actor chose it.
		w.peer.stats.failed[channelOf(w.kind)].Add(1)
		w.t.unreachable(m)
		return
	}
	if err := w.enc.encode(m); err != nil {
		w.peer.stats.failed[channelOf(w.kind)].Add(1)
		w.t.unreachable(m)
		w.fail(ctx, "write", err)
		return
	}
	w.peer.stats.sent[channelOf(w.kind)].Add(1)
	if !w.flushQueued {
		w.flushQueued = true
		ctx.Send(ctx.Self(), flushStream{})
	}
}

func (w *streamWriter) armHeartbeat(ctx actor.Context) {
	self, root, c := ctx.Self(), ctx.ActorSystem().Root, w.conn
	w.beat = time.AfterFunc(heartbeatInterval, func() { root.Send(self, heartbeatTimer{conn: c}) })
}

func (w *streamWriter) fail(ctx actor.Context, op string, err error) {
	// The stream this member dialed to the peer says, at warn, when the
	// peer is lost (stream_reader.go).
	w.t.lg.Debug("lost a stream to a peer", zap.Uint64("peer", w.peer.id),
		zap.Stringer("stream", w.kind), zap.String("op", op), zap.Error(err))
	w.close(ctx, op+" failed")
}

// close lets go of the connection and tells the peer actor to stop
// choosing this stream.
func (w *streamWriter) close(ctx actor.Context, why string) {
	if w.release(why) {
		ctx.Send(ctx.Parent(), streamState{kind: w.kind, up: false})
	}
}

// release lets go of the connection, if there is one: the handler holding
// it then returns and net/http ends the response, which the peer reads as
// the end of the stream.
func (w *streamWriter) release(why string) bool {
	if w.conn == nil {
		return false
	}
	if w.beat != nil {
		w.beat.Stop()
	}
	w.conn.release()
	w.peer.active.disconnected()
	w.conn, w.enc = nil, nil
	w.t.lg.Debug("stream detached", zap.Uint64("peer", w.peer.id), zap.Stringer("stream", w.kind), zap.String("why", why))
	return true
}
