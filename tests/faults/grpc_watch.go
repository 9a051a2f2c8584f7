package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// GRPCWatcher is a Watcher that follows the member's watch through etcd's
// Watch API (a gRPC stream on the same client URL) instead of the HTTP
// API's SSE: one watch of Prefix (key Prefix, range_end its prefix end, as
// clientv3's WithPrefix), with progress_notify. It keeps the Watcher's
// record, and its fields mean the same: when a stream breaks (the member
// killed, paused, stopped; the watcher's own cut, Lifetime; silence past
// Idle) it opens a new one, on a new connection, with start_revision the
// revision after the last it received through; what it receives feeds
// the same checks (CheckWatches, CheckLeases). Each response's events are
// split into one WatchMsg per revision, in the order they came (the node
// never splits a revision across responses: two messages of one revision
// are a violation of order).
//
// "Received through" moves, as clientv3's resume point does, with the
// mod_revision of the last event received, and with a progress
// notification's header revision (no events, not created, not canceled:
// etcd's promise that every event up to it was sent). A created response
// moves nothing: its header is the member's current revision, while the
// events from start_revision on are still to come.
//
// A canceled response with compact_revision set (the member's history no
// longer reaches start_revision) stops the watcher with ErrWatchCompacted,
// as the SSE watcher's 410 does. A canceled response without it (the
// member ended the watch: counted in Ends by its reason) and stream
// errors resume. A create refused with a reason that is not one of etcd's
// Unavailable errors, a stream refused with InvalidArgument,
// Unimplemented, PermissionDenied or Unauthenticated, and a response that
// breaks the contract (ErrMalformedAnswer) stop it.
type GRPCWatcher struct {
	Watcher
}

// Run follows the watch until ctx ends or a fatal error, which it returns
// (nil when ctx ended).
func (w *GRPCWatcher) Run(ctx context.Context) error {
	return w.loop(ctx, w.followGRPC)
}

// door names the watcher's API in reports.
func (w *GRPCWatcher) door() string { return "gRPC" }

// followGRPC makes one attempt: a connection, a stream, a create request,
// then the responses until the stream ends or breaks. opened says a watch
// was created; err is fatal.
func (w *GRPCWatcher) followGRPC(ctx context.Context, idle time.Duration) (opened bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	defer timer.Stop()
	if w.Lifetime != nil {
		life := time.AfterFunc(w.Lifetime(), func() { cancel(errStreamCut) })
		defer life.Stop()
	}

	w.mu.Lock()
	start := max(w.through+1, w.Start)
	w.mu.Unlock()
	conn, _, err := dialGRPC(w.URL)
	if err != nil {
		return false, fmt.Errorf("member %d: %w", w.Member, err)
	}
	defer conn.Close()
	stream, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		return false, w.brokeGRPC(ctx, false, err)
	}
	create := &pb.WatchCreateRequest{Key: []byte(w.Prefix), RangeEnd: []byte(prefixRangeEnd(w.Prefix)),
		StartRevision: int64(start), ProgressNotify: true}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: create}}); err != nil {
		return false, w.brokeGRPC(ctx, false, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return false, w.brokeGRPC(ctx, false, err)
	}
	timer.Reset(idle)
	what := fmt.Sprintf("watch of %q from revision %d", w.Prefix, start)
	switch {
	case !first.Created:
		return false, fmt.Errorf("member %d: %w: the first response to a %s is not its creation: %v", w.Member, ErrMalformedAnswer, what, first)
	case first.Canceled && first.CompactRevision != 0:
		return false, fmt.Errorf("member %d: %w: %s: compact_revision %d", w.Member, ErrWatchCompacted, what, first.CompactRevision)
	case first.Canceled && retryableReason(first.CancelReason):
		w.ended(ctx, false, fmt.Errorf("%s refused: %s", what, first.CancelReason))
		return false, nil
	case first.Canceled:
		return false, fmt.Errorf("member %d refused the %s: %q", w.Member, what, first.CancelReason)
	case first.WatchId < 0:
		return false, fmt.Errorf("member %d: %w: a %s created under id %d", w.Member, ErrMalformedAnswer, what, first.WatchId)
	}
	id := first.WatchId
	w.mu.Lock()
	w.conns++
	conn1 := w.conns
	w.stats.Connections++
	w.mu.Unlock()

	for {
		resp, err := stream.Recv()
		if err != nil {
			return true, w.brokeGRPC(ctx, true, err)
		}
		timer.Reset(idle)
		end, err := w.takeGRPC(resp, id, conn1)
		if err != nil {
			return true, fmt.Errorf("member %d: %w", w.Member, err)
		}
		if end {
			return true, nil
		}
	}
}

// brokeGRPC counts a stream that broke, or an attempt that opened none,
// and says whether the error is fatal: a refusal no retry mends.
func (w *GRPCWatcher) brokeGRPC(ctx context.Context, opened bool, err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated:
		if ctx.Err() == nil {
			return fmt.Errorf("member %d refused the watch stream: %w", w.Member, err)
		}
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("the member ended the stream")
	}
	w.ended(ctx, opened, err)
	return nil
}

// retryableReasons are the cancel reasons of a create that a retry may
// mend: etcd's Unavailable errors (toStatus's answers for a member that
// times out, has no leader, or stops).
var retryableReasons = map[string]bool{}

func init() {
	for _, err := range []error{rpctypes.ErrGRPCTimeout, rpctypes.ErrGRPCNoLeader, rpctypes.ErrGRPCStopped,
		rpctypes.ErrGRPCTimeoutDueToLeaderFail, rpctypes.ErrGRPCTimeoutDueToConnectionLost, rpctypes.ErrGRPCNotCapable,
		rpctypes.ErrGRPCLeaderChanged, rpctypes.ErrGRPCRequestTooManyRequests} {
		retryableReasons[status.Convert(err).Message()] = true
	}
}

func retryableReason(reason string) bool { return retryableReasons[reason] }

// takeGRPC records one response of watch id; end says the watch ended
// (canceled) and the stream is to be left for a new one.
func (w *GRPCWatcher) takeGRPC(resp *pb.WatchResponse, id int64, conn int) (end bool, err error) {
	if resp.Header == nil {
		return false, fmt.Errorf("%w: a watch response without a header: %v", ErrMalformedAnswer, resp)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notifyLocked()
	switch {
	case resp.WatchId != id && !(resp.WatchId == -1 && len(resp.Events) == 0 && !resp.Canceled):
		return false, fmt.Errorf("%w: a response of watch %d on the stream of watch %d: %v", ErrMalformedAnswer, resp.WatchId, id, resp)
	case resp.Created, resp.Fragment:
		return false, fmt.Errorf("%w: a created or fragment response after the creation: %v", ErrMalformedAnswer, resp)
	case resp.Canceled && resp.CompactRevision != 0:
		return false, fmt.Errorf("%w: watch %d canceled after revision %d: compact_revision %d",
			ErrWatchCompacted, id, w.through, resp.CompactRevision)
	case resp.Canceled:
		// The member ended the watch: counted as an end, and resumed.
		if w.stats.Ends == nil {
			w.stats.Ends = make(map[string]int)
		}
		w.stats.Ends["canceled: "+resp.CancelReason]++
		return true, nil
	case len(resp.Events) == 0:
		if resp.Header.Revision < 0 {
			return false, fmt.Errorf("%w: a progress notification at revision %d", ErrMalformedAnswer, resp.Header.Revision)
		}
		// A mark below what was received says nothing new: true too.
		w.through = max(w.through, uint64(resp.Header.Revision))
		w.stats.Progress++
		return false, nil
	}
	msgs, err := grpcWatchMsgs(resp.Events)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformedAnswer, err)
	}
	now := time.Now()
	for _, m := range msgs {
		m.Conn, m.Covered, m.At = conn, w.through, now
		w.msgs = append(w.msgs, m)
		w.through = max(w.through, m.Revision)
		w.stats.Messages++
		w.stats.Events += len(m.Events)
	}
	return false, nil
}

// grpcWatchMsgs splits a response's events into messages of one revision
// each, in order: a run of events of one mod_revision is one message. It
// checks the form only, as parseWatchMsg does.
func grpcWatchMsgs(events []*mvccpb.Event) ([]WatchMsg, error) {
	var msgs []WatchMsg
	for i, e := range events {
		kv := e.GetKv()
		if kv == nil || kv.ModRevision <= 0 {
			return nil, fmt.Errorf("event %d: no key-value or mod_revision: %v", i, e)
		}
		ev := WatchEvent{Key: string(kv.Key), ModRevision: uint64(kv.ModRevision)}
		switch e.Type {
		case mvccpb.Event_PUT:
			if kv.CreateRevision < 0 || kv.Version < 0 || kv.Lease < 0 {
				return nil, fmt.Errorf("event %d: negative counters: %v", i, e)
			}
			ev.Type, ev.Value = "put", string(kv.Value)
			ev.CreateRevision, ev.Version, ev.Lease = uint64(kv.CreateRevision), uint64(kv.Version), kv.Lease
		case mvccpb.Event_DELETE:
			if len(kv.Value) != 0 || kv.Lease != 0 {
				return nil, fmt.Errorf("event %d: a delete with a value or a lease: %v", i, e)
			}
			ev.Type = "delete"
		default:
			return nil, fmt.Errorf("event %d: type %v", i, e.Type)
		}
		if n := len(msgs); n > 0 && msgs[n-1].Revision == ev.ModRevision {
			msgs[n-1].Events = append(msgs[n-1].Events, ev)
			continue
		}
		msgs = append(msgs, WatchMsg{Revision: ev.ModRevision, Events: []WatchEvent{ev}})
	}
	return msgs, nil
}

// prefixRangeEnd is the range end of the keys under prefix, as clientv3's
// WithPrefix makes it: "\x00" (every key from prefix on) when no key is
// past them all.
func prefixRangeEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

// door names the watcher's API in reports.
func (w *Watcher) door() string { return "SSE" }

// memberID is the member the watcher follows.
func (w *Watcher) memberID() uint64 { return w.Member }

// MemberWatcher is what the fault suite asks of a watcher of either door.
type MemberWatcher interface {
	Run(ctx context.Context) error
	WaitThrough(ctx context.Context, rev uint64) error
	Drain(upTo uint64) ([]WatchMsg, WatchStats)
	Err() error
	memberID() uint64
	door() string
}

var (
	_ MemberWatcher = (*Watcher)(nil)
	_ MemberWatcher = (*GRPCWatcher)(nil)
)
