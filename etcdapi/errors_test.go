package etcdapi

import (
	"context"
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftkv/node/door"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/messages"
)

// TestToStatus pins the errors clientv3 tells apart by their text, and the
// codes that decide whether it retries: a write that timed out is never
// answered as one a retry could not duplicate.
func TestToStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("asking the state machine: %w", err) }
	for _, tc := range []struct {
		err  error
		want error
		code codes.Code
	}{
		{&messages.CompactedError{Revision: 3, Compacted: 7}, rpctypes.ErrGRPCCompacted, 0},
		{wrap(messages.ErrFutureRevision), rpctypes.ErrGRPCFutureRev, 0},
		{wrap(messages.ErrKeyTooLarge), rpctypes.ErrGRPCRequestTooLarge, 0},
		{wrap(messages.ErrValueTooLarge), rpctypes.ErrGRPCRequestTooLarge, 0},
		{fmt.Errorf("%w: %w", messages.ErrEntryRefused, messages.ErrLeaseNotFound), rpctypes.ErrGRPCLeaseNotFound, 0},
		{messages.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist, 0},
		{wrap(apply.ErrNoSpace), rpctypes.ErrGRPCNoSpace, 0},
		{fmt.Errorf("%w: operation 1", messages.ErrDuplicateKey), rpctypes.ErrGRPCDuplicateKey, 0},
		{fmt.Errorf("%w: 300 operations", messages.ErrTooManyOps), rpctypes.ErrGRPCTooManyOps, 0},
		{wrap(messages.ErrNotFound), rpctypes.ErrGRPCKeyNotFound, 0},
		{wrap(actor.ErrTimeout), rpctypes.ErrGRPCTimeout, 0},
		{messages.ErrTimeout, rpctypes.ErrGRPCTimeout, 0},
		{context.DeadlineExceeded, rpctypes.ErrGRPCTimeout, 0},
		{messages.ErrNoLeader, rpctypes.ErrGRPCNoLeader, 0},
		{messages.ErrProposalDropped, rpctypes.ErrGRPCNoLeader, 0},
		{wrap(actor.ErrDeadLetter), rpctypes.ErrGRPCStopped, 0},
		{messages.ErrUnknownMember, rpctypes.ErrGRPCMemberNotFound, 0},
		{messages.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist, 0},
		{messages.ErrNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted, 0},
		{messages.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady, 0},
		{messages.ErrNotLearner, rpctypes.ErrGRPCMemberNotLearner, 0},
		{messages.ErrNotLeader, rpctypes.ErrGRPCNotLeader, 0},
		{&door.RemoteError{Status: 404, Body: "requested lease not found"}, rpctypes.ErrGRPCLeaseNotFound, 0},
		{&door.RemoteError{Status: 504, Body: "timed out"}, rpctypes.ErrGRPCTimeout, 0},
		{fmt.Errorf("%w: unknown target", messages.ErrInvalidTxn), nil, codes.InvalidArgument},
		{messages.ErrUnsupported, nil, codes.Unimplemented},
		{messages.ErrLeaseExpiring, nil, codes.Unavailable},
		{fmt.Errorf("disk on fire"), nil, codes.Internal},
	} {
		got := toStatus(tc.err)
		if tc.want != nil {
			if got != tc.want {
				t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
			}
			continue
		}
		if status.Code(got) != tc.code {
			t.Errorf("%v: %v, want code %v", tc.err, got, tc.code)
		}
	}
}
