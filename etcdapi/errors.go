package etcdapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// toStatus is the one table from the errors of the actors to the gRPC
// answers. Where etcd has an error for the case it is that error, value
// for value: clientv3 turns an error back into its rpctypes value by its
// message text, and decides from it whether to retry. What etcd has no
// error for keeps its code and our message.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a gRPC answer
	}
	var compacted *messages.CompactedError
	var remote *door.RemoteError
	switch {
	case errors.As(err, &compacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, messages.ErrFutureRevision):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, messages.ErrValueTooLarge), errors.Is(err, messages.ErrKeyTooLarge):
		return rpctypes.ErrGRPCRequestTooLarge
	case errors.Is(err, messages.ErrEmptyKey):
		return rpctypes.ErrGRPCEmptyKey
	case errors.Is(err, messages.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, messages.ErrLeaseExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, messages.ErrLeaseTTLTooLarge):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	case errors.Is(err, apply.ErrNoSpace):
		return rpctypes.ErrGRPCNoSpace
	case errors.Is(err, messages.ErrNotFound):
		return rpctypes.ErrGRPCKeyNotFound
	case errors.Is(err, messages.ErrTooManyOps):
		return rpctypes.ErrGRPCTooManyOps
	case errors.Is(err, messages.ErrDuplicateKey):
		return rpctypes.ErrGRPCDuplicateKey
	case errors.Is(err, messages.ErrInvalidTxn):
		return status.Error(codes.InvalidArgument, "etcdserver: "+err.Error())
	case errors.Is(err, messages.ErrBadRequest), errors.Is(err, messages.ErrEntryRefused), errors.Is(err, apply.ErrInvalidUTF8):
		return status.Error(codes.InvalidArgument, "etcdserver: "+err.Error())
	case errors.As(err, &remote):
		return remoteStatus(remote)
	case errors.Is(err, actor.ErrTimeout), errors.Is(err, messages.ErrTimeout),
		errors.Is(err, messages.ErrTransferFailed), errors.Is(err, context.DeadlineExceeded):
		// Unavailable, as etcd's: clientv3 retries a read after it, never
		// a write, whose outcome is unknown.
		return rpctypes.ErrGRPCTimeout
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, messages.ErrNoLeader), errors.Is(err, messages.ErrProposalDropped):
		return rpctypes.ErrGRPCNoLeader
	case errors.Is(err, messages.ErrRemoved), errors.Is(err, messages.ErrStopped), errors.Is(err, actor.ErrDeadLetter):
		return rpctypes.ErrGRPCStopped
	case errors.Is(err, messages.ErrUnknownMember):
		return rpctypes.ErrGRPCMemberNotFound
	case errors.Is(err, messages.ErrMemberExists), errors.Is(err, messages.ErrIDPrefixInUse), errors.Is(err, messages.ErrIDRemoved):
		return rpctypes.ErrGRPCMemberExist
	case errors.Is(err, messages.ErrPeerURLExists):
		return rpctypes.ErrGRPCPeerURLExist
	case errors.Is(err, messages.ErrNotEnoughStarted):
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	case errors.Is(err, messages.ErrLearnerNotReady):
		return rpctypes.ErrGRPCLearnerNotReady
	case errors.Is(err, messages.ErrNotLearner):
		return rpctypes.ErrGRPCMemberNotLearner
	case errors.Is(err, messages.ErrNoTransferee):
		return rpctypes.ErrGRPCBadLeaderTransferee
	case errors.Is(err, messages.ErrNotLeader):
		return rpctypes.ErrGRPCNotLeader
	case errors.Is(err, messages.ErrIsLearner), errors.Is(err, messages.ErrConfChangeDeclined):
		return status.Error(codes.FailedPrecondition, "etcdserver: "+err.Error())
	case errors.Is(err, messages.ErrConfChangePending), errors.Is(err, messages.ErrLeaseExpiring), errors.Is(err, messages.ErrDefragAborted):
		return status.Error(codes.Unavailable, "etcdserver: "+err.Error())
	case errors.Is(err, watch.ErrTooManyWatchers):
		return rpctypes.ErrGRPCRequestTooManyRequests
	case errors.Is(err, messages.ErrUnsupported):
		return status.Error(codes.Unimplemented, "etcdserver: "+err.Error())
	case errors.Is(err, door.ErrNotWired):
		return status.Error(codes.Unavailable, "etcdserver: "+err.Error())
	}
	return status.Error(codes.Internal, "etcdserver: "+err.Error())
}

// remoteStatus is the leader's HTTP answer to a request handed to it, in
// gRPC's terms.
func remoteStatus(r *door.RemoteError) error {
	switch r.Status {
	case http.StatusNotFound:
		return rpctypes.ErrGRPCLeaseNotFound
	case http.StatusServiceUnavailable:
		return status.Error(codes.Unavailable, "etcdserver: "+r.Error())
	case http.StatusGatewayTimeout:
		return rpctypes.ErrGRPCTimeout
	case http.StatusBadRequest:
		return status.Error(codes.InvalidArgument, "etcdserver: "+r.Error())
	}
	return status.Error(codes.Internal, "etcdserver: "+r.Error())
}

// unimplemented answers an RPC this member does not serve; the message says
// what to use instead, as the README's compatibility table does.
func unimplemented(what string) error {
	return status.Error(codes.Unimplemented, "etcdserver: "+what+" is not served by this member")
}
