package faults

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// The gRPC clients (Workers.GRPC) do the workers' operations through
// etcd's v3 API, on the same client URLs as the HTTP clients: what
// clientv3 sends on the wire, through the generated stubs (the root
// module does not depend on clientv3). Each operation is recorded with the
// same Input and Output as its HTTP twin, so one model judges both doors
// together (a write through one must be read through the other):
//
//   - OpGet: KV.Range of the key alone, linearizable (serializable false):
//     Found, Value, Rev the key's mod_revision (the HTTP ETag);
//   - OpPut: KV.Put: Rev the header's revision, which is the write's (the
//     plain put is the HTTP PUT's command, messages.Put, and answers its
//     Result.Revision, as the HTTP API does);
//   - OpDelete: KV.DeleteRange of the key alone: Found is deleted == 1,
//     Rev the header's revision (the delete's; with deleted 0 the store's,
//     as the HTTP answer's);
//   - OpCAS, OpCASDelete: KV.Txn comparing the key's mod_revision with
//     Input.Rev (0: absent, which mod_revision 0 means), putting or
//     deleting on success, reading the key on failure;
//   - OpTxnCAS: KV.Txn comparing the key's value with Input.Old, putting
//     on success, reading the key on failure.
//
// A transaction that succeeded answers the header's revision as the
// write's (the HTTP /v1/txn answer's "revision" is the same
// Result.Revision); one whose failure branch ran is a refusal (Refused),
// and its range shows the key as it was: Found and Rev (mod_revision),
// and Value for OpTxnCAS, as the HTTP 412 and the HTTP transaction's
// failure branch do.
//
// Outcomes of a call that failed (grpcOutcome), from the node's toStatus
// table (etcdapi/errors.go):
//
//   - a read that failed observed nothing: StatusFailed, whatever the error;
//   - the call's request never started on a connection (the dial was
//     refused: a killed member; the handshake never finished: a paused
//     one; see dialGRPC): nothing was sent, StatusFailed. Each operation
//     has a connection of its own, as the HTTP clients' keep-alives are
//     off;
//   - InvalidArgument: the door refused the request before proposing it
//     (an empty key, etcdserver: key is not provided; a key over the
//     limit, etcdserver: request is too large; a malformed transaction),
//     or the state machine refused the entry (ErrEntryRefused), which
//     writes nothing on any member: StatusFailed. The workers' writes of
//     valid keys are never such, so for them it is also an
//     ErrMalformedAnswer, which fails the round;
//   - Unavailable with exactly rpctypes.ErrGRPCNoLeader's message,
//     "etcdserver: no leader": toStatus sends it only for
//     messages.ErrNoLeader and messages.ErrProposalDropped, the errors the
//     HTTP API answers 503 with Retry-After, because raft refused the
//     proposal or the raft actor held it and never placed it (a proposal
//     proposed again after a leader change is never answered so,
//     kv/batch.go): StatusFailed;
//   - everything else is StatusUnknown for a write: ErrGRPCTimeout
//     ("etcdserver: request timed out", Unavailable, as the HTTP 504),
//     ErrGRPCStopped and the other Unavailable answers (the HTTP 503s
//     without Retry-After), DeadlineExceeded (the per-call deadline,
//     Workers.Timeout, passed), Canceled, Internal, a connection reset
//     or closed after it was made, and every code not named here.
//
// A success whose answer breaks etcd's contract (no header, a write at
// revision 0, a range of a key that shows another key or two, a
// transaction's answer without its one operation's response) is recorded
// as if no answer had come, with ErrMalformedAnswer in its cause, as the
// HTTP clients do.

// grpcTarget is the host:port of a member's client URL, for gRPC.
func grpcTarget(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("client URL %q: want http://host:port", endpoint)
	}
	return u.Host, nil
}

// grpcReconnect bounds how long a connection waits between its attempts:
// gRPC's default backoff grows to two minutes, far longer than a fault.
var grpcReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: time.Second,
})

// dialGRPC makes a client connection to endpoint that notes whether a
// call's request ever started on the wire: sent says whether gRPC queued
// the headers of a call on a connection (stats.OutHeader, which it reports
// once the headers are queued, before they can be written), hence whether
// any byte of it can have reached the member. A refused dial, a member
// that never finishes the handshake (paused), a connection that breaks
// before the call was given one: not sent. gRPC connects lazily, on the
// first call.
func dialGRPC(endpoint string) (conn *grpc.ClientConn, sent func() bool, err error) {
	target, err := grpcTarget(endpoint)
	if err != nil {
		return nil, nil, err
	}
	h := &sentHandler{}
	conn, err = grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(h),
		grpcReconnect,
	)
	if err != nil {
		return nil, nil, err
	}
	return conn, h.sent.Load, nil
}

// sentHandler notes that a call's headers were queued on a connection.
type sentHandler struct{ sent atomic.Bool }

func (h *sentHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (h *sentHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h *sentHandler) HandleConn(context.Context, stats.ConnStats) {}
func (h *sentHandler) HandleRPC(_ context.Context, s stats.RPCStats) {
	if o, ok := s.(*stats.OutHeader); ok && o.Client {
		h.sent.Store(true)
	}
}

// sendGRPC performs in through etcd's KV API on endpoint, on a connection
// of its own, within timeout, and says what its answer proves.
func sendGRPC(ctx context.Context, endpoint string, timeout time.Duration, in Input) (Output, Status, error) {
	conn, sent, err := dialGRPC(endpoint)
	if err != nil {
		return Output{}, StatusFailed, fmt.Errorf("gRPC client for %s: %w", endpoint, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := callGRPC(ctx, pb.NewKVClient(conn), in)
	if err == nil {
		return out, StatusOK, nil
	}
	st, cause := grpcOutcome(in, err, sent())
	return Output{}, st, fmt.Errorf("gRPC %v of %d-byte key via %s: %w", in.Kind, len(in.Key), endpoint, cause)
}

// errGRPCMalformed wraps what a successful call answered against etcd's
// contract; grpcOutcome records it as no answer.
type errGRPCMalformed struct{ err error }

func (e errGRPCMalformed) Error() string { return e.err.Error() }
func (e errGRPCMalformed) Unwrap() error { return e.err }

func malformed(format string, args ...any) error {
	return errGRPCMalformed{fmt.Errorf("%w: "+format, append([]any{ErrMalformedAnswer}, args...)...)}
}

// grpcOutcome is the status of an operation whose call failed with err,
// and its cause; sent says its request may have reached the member
// (dialGRPC). See the mapping above.
func grpcOutcome(in Input, err error, sent bool) (Status, error) {
	var bad errGRPCMalformed
	switch {
	case errors.As(err, &bad):
		return failureStatus(in.Kind), err
	case !in.Kind.isWrite():
		return StatusFailed, err
	case !sent:
		return StatusFailed, fmt.Errorf("never sent (no request on a connection): %w", err)
	}
	s, _ := status.FromError(err)
	switch {
	case s.Code() == codes.InvalidArgument && !refusedKey(in.Key):
		return StatusFailed, fmt.Errorf("%w: a valid write refused: %w", ErrMalformedAnswer, err)
	case s.Code() == codes.InvalidArgument:
		return StatusFailed, err
	case notProposedGRPC(s):
		return StatusFailed, fmt.Errorf("not proposed: %w", err)
	}
	return StatusUnknown, err
}

// notProposedGRPC says whether s proves its write was never proposed:
// etcd's "no leader", which this node answers only for a proposal raft
// refused or the raft actor never placed (see the mapping above).
func notProposedGRPC(s *status.Status) bool {
	want := status.Convert(rpctypes.ErrGRPCNoLeader)
	return s.Code() == want.Code() && s.Message() == want.Message()
}

// callGRPC makes the call of in and reads its answer; an error is the
// call's, or an errGRPCMalformed.
func callGRPC(ctx context.Context, kv pb.KVClient, in Input) (Output, error) {
	key := []byte(in.Key)
	switch in.Kind {
	case OpGet:
		resp, err := kv.Range(ctx, &pb.RangeRequest{Key: key})
		if err != nil {
			return Output{}, err
		}
		if resp.GetHeader() == nil {
			return Output{}, malformed("a range: no header")
		}
		return rangeOutput(in, resp.Kvs)
	case OpPut:
		resp, err := kv.Put(ctx, &pb.PutRequest{Key: key, Value: []byte(in.Value), Lease: in.Lease})
		if err != nil {
			return Output{}, err
		}
		rev, err := headerRevision(resp.GetHeader())
		if err != nil {
			return Output{}, malformed("a put: %w", err)
		}
		return Output{Rev: rev}, nil
	case OpDelete:
		resp, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: key})
		if err != nil {
			return Output{}, err
		}
		rev, err := headerRevision(resp.GetHeader())
		switch {
		case err != nil:
			return Output{}, malformed("a delete: %w", err)
		case resp.Deleted < 0 || resp.Deleted > 1:
			return Output{}, malformed("a delete of one key deleted %d", resp.Deleted)
		}
		return Output{Found: resp.Deleted == 1, Rev: rev}, nil
	case OpCAS, OpCASDelete, OpTxnCAS:
		resp, err := kv.Txn(ctx, txnOfInput(in))
		if err != nil {
			return Output{}, err
		}
		return txnOutput(in, resp)
	}
	return Output{}, fmt.Errorf("gRPC: no call for %v", in.Kind)
}

// txnOfInput is the transaction of a conditional write.
func txnOfInput(in Input) *pb.TxnRequest {
	key := []byte(in.Key)
	cmp := &pb.Compare{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: int64(in.Rev)}}
	if in.Kind == OpTxnCAS {
		cmp = &pb.Compare{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte(in.Old)}}
	}
	success := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: key, Value: []byte(in.Value)}}}
	if in.Kind == OpCASDelete {
		success = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: key}}}
	}
	return &pb.TxnRequest{
		Compare: []*pb.Compare{cmp},
		Success: []*pb.RequestOp{success},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: key}}}},
	}
}

// headerRevision is a write's revision as its header says it.
func headerRevision(h *pb.ResponseHeader) (uint64, error) {
	switch {
	case h == nil:
		return 0, errors.New("no header")
	case h.Revision <= 0:
		return 0, fmt.Errorf("header revision %d", h.Revision)
	}
	return uint64(h.Revision), nil
}

// rangeOutput reads the keys a range of one key answered: the key, or
// nothing.
func rangeOutput(in Input, kvs []*mvccpb.KeyValue) (Output, error) {
	switch len(kvs) {
	case 0:
		return Output{}, nil
	case 1:
	default:
		return Output{}, malformed("a range of one key answered %d keys", len(kvs))
	}
	kv := kvs[0]
	switch {
	case string(kv.Key) != in.Key:
		return Output{}, malformed("a range of a %d-byte key answered a %d-byte key", len(in.Key), len(kv.Key))
	case kv.ModRevision <= 0:
		return Output{}, malformed("a present key at mod_revision %d", kv.ModRevision)
	}
	return Output{Found: true, Value: string(kv.Value), Rev: uint64(kv.ModRevision)}, nil
}

// txnOutput reads a conditional write's transaction.
func txnOutput(in Input, resp *pb.TxnResponse) (Output, error) {
	if len(resp.Responses) != 1 {
		return Output{}, malformed("a transaction of one operation answered %d responses", len(resp.Responses))
	}
	r := resp.Responses[0]
	if !resp.Succeeded {
		rr := r.GetResponseRange()
		if rr == nil {
			return Output{}, malformed("the failure branch's answer is not a range")
		}
		// Its range carries no header of its own, as etcd's.
		out, err := rangeOutput(in, rr.Kvs)
		if err != nil {
			return Output{}, err
		}
		if in.Kind != OpTxnCAS {
			out.Value = "" // as the HTTP 412, which shows no value
		}
		out.Refused = true
		return out, nil
	}
	rev, err := headerRevision(resp.GetHeader())
	if err != nil {
		return Output{}, malformed("a transaction that succeeded: %w", err)
	}
	if in.Kind == OpCASDelete {
		d := r.GetResponseDeleteRange()
		if d == nil || d.Deleted != 1 {
			return Output{}, malformed("a conditional delete that applied answered %v", r)
		}
		return Output{Found: true, Rev: rev}, nil
	}
	if r.GetResponsePut() == nil {
		return Output{}, malformed("a conditional put that applied answered %v", r)
	}
	return Output{Rev: rev}, nil
}

// sendRefusedGRPC is sendRefused through etcd's API: in's key is one no
// write may carry, and the node must refuse it with InvalidArgument
// (etcdserver: key is not provided, or etcdserver: request is too large),
// whose message does not echo the key. Unavailable and DeadlineExceeded,
// or no connection, prove nothing either way (a fault met the write); any
// other answer, a success among them, is ErrBadRefusal.
func sendRefusedGRPC(ctx context.Context, endpoint string, timeout time.Duration, in Input) error {
	what := fmt.Sprintf("gRPC %v of a %d-byte key", in.Kind, len(in.Key))
	conn, sent, err := dialGRPC(endpoint)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = callGRPC(ctx, pb.NewKVClient(conn), in)
	return checkRefusalGRPC(err, sent(), what)
}

// checkRefusalGRPC judges the answer err to what, a write of a key no
// write may carry, as checkRefusal does an HTTP answer; sent says its
// request may have reached the member.
func checkRefusalGRPC(err error, sent bool, what string) error {
	var bad errGRPCMalformed
	if err == nil || errors.As(err, &bad) {
		return fmt.Errorf("%w: %s: acknowledged (%v), want InvalidArgument", ErrBadRefusal, what, err)
	}
	s, ok := status.FromError(err)
	msg := s.Message()
	cause := fmt.Sprintf("%s: %v %s", what, s.Code(), msg[:min(len(msg), 200)])
	switch {
	case !sent:
		return fmt.Errorf("%s: never sent: %w", what, err)
	case !ok:
		return fmt.Errorf("%w: %s: not a gRPC status: %w", ErrBadRefusal, what, err)
	case s.Code() == codes.Unavailable, s.Code() == codes.DeadlineExceeded:
		return errors.New(cause)
	case s.Code() != codes.InvalidArgument:
		return fmt.Errorf("%w: %s, want InvalidArgument", ErrBadRefusal, cause)
	case len(msg) > maxRefusalBytes:
		return fmt.Errorf("%w: %s: a refusal of more than %d bytes", ErrBadRefusal, cause, maxRefusalBytes)
	}
	return fmt.Errorf("refused: %s", cause)
}
