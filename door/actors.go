package door

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/messages"
)

// DefaultTimeout bounds a request that names no deadline: long enough for
// an election (a few hundred ms) and a commit behind it, short enough that
// a client learns of a stuck member before its own timeouts fire.
const DefaultTimeout = 5 * time.Second

// ErrNotWired is the error of a request whose target actor the door was
// not given; asking a nil PID would panic inside protoactor.
var ErrNotWired = errors.New("client api: actor not configured")

// Actors reaches a member's kv and raft actors.
type Actors struct {
	Root    *actor.RootContext
	KV      *actor.PID    // takes the client requests of package messages, answers messages.Result
	Raft    *actor.PID    // takes messages.StatusRequest, answers messages.Status
	Timeout time.Duration // per request; 0 means DefaultTimeout
}

// timeout is how long to wait for an actor: the door's limit, cut to the
// request's deadline. A deadline already past answers at once.
func (a Actors) timeout(ctx context.Context) time.Duration {
	d := a.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return max(d, time.Millisecond)
}

// Ask sends msg to pid and waits for the answer. An actor that answers
// with an error value fails the request.
func (a Actors) Ask(ctx context.Context, pid *actor.PID, msg any) (any, error) {
	if a.Root == nil || pid == nil {
		return nil, ErrNotWired
	}
	d := a.timeout(ctx)
	reply, err := a.Root.RequestFuture(pid, msg, d).Result()
	if err != nil {
		return nil, a.askError(pid, d, err)
	}
	if e, ok := reply.(error); ok {
		return nil, e
	}
	return reply, nil
}

// askError says in an operator's words why an actor gave no answer; err
// stays wrapped for the doors' error tables.
func (a Actors) askError(pid *actor.PID, d time.Duration, err error) error {
	who := "the raft actor"
	if pid == a.KV {
		who = "the state machine"
	}
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return fmt.Errorf("%s did not answer within %v: %w", who, d.Round(time.Millisecond), err)
	case errors.Is(err, actor.ErrDeadLetter):
		return fmt.Errorf("%s has stopped: %w", who, err)
	}
	return fmt.Errorf("asking %s: %w", who, err)
}

// AskKV sends msg to the kv actor. The error is the transport's or the
// Result's own, so a caller sees success only when Result.Err is nil.
func (a Actors) AskKV(ctx context.Context, msg any) (messages.Result, error) {
	reply, err := a.Ask(ctx, a.KV, msg)
	if err != nil {
		return messages.Result{}, err
	}
	var res messages.Result
	switch v := reply.(type) {
	case messages.Result:
		res = v
	case *messages.Result:
		if v == nil {
			return messages.Result{}, errors.New("the state machine answered with no result")
		}
		res = *v
	default:
		return messages.Result{}, fmt.Errorf("the state machine answered with an unexpected %T", reply)
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// AskStatus asks the raft actor for its status.
func (a Actors) AskStatus(ctx context.Context) (messages.Status, error) {
	reply, err := a.Ask(ctx, a.Raft, messages.StatusRequest{})
	if err != nil {
		return messages.Status{}, err
	}
	switch v := reply.(type) {
	case messages.Status:
		return v, nil
	case *messages.Status:
		if v != nil {
			return *v, nil
		}
	}
	return messages.Status{}, fmt.Errorf("the raft actor answered a status request with an unexpected %T", reply)
}

// AskStoreStatus asks the kv actor for the state's revisions, sizes and
// space alarm.
func (a Actors) AskStoreStatus(ctx context.Context) (messages.StoreStatus, error) {
	reply, err := a.Ask(ctx, a.KV, messages.StoreStatusRequest{})
	if err != nil {
		return messages.StoreStatus{}, err
	}
	ss, ok := reply.(messages.StoreStatus)
	if !ok {
		return messages.StoreStatus{}, fmt.Errorf("the state machine answered a status request with an unexpected %T", reply)
	}
	return ss, nil
}

// BackupSource streams a consistent copy of the member's db: a read
// transaction's view, so that writers go on while it is read. size is the
// number of bytes the stream holds; info what the copy holds. kv.State is
// one. Both doors serve it: etcd's Maintenance.Snapshot and the HTTP API's
// GET /v1/snapshot, each ending the stream with the SHA-256 of the db.
type BackupSource interface {
	Backup() (rc io.ReadCloser, size int64, info messages.BackupInfo, err error)
}

// Backup opens a backup of src once the kv actor has committed what it
// applied (messages.CommitRequest), so that it holds every write the
// member acknowledged before the call. The stream is the caller's to read
// and close.
func (a Actors) Backup(ctx context.Context, src BackupSource) (io.ReadCloser, int64, messages.BackupInfo, error) {
	if src == nil {
		return nil, 0, messages.BackupInfo{}, ErrNotWired
	}
	if _, err := a.Ask(ctx, a.KV, messages.CommitRequest{}); err != nil {
		return nil, 0, messages.BackupInfo{}, err
	}
	return src.Backup()
}
