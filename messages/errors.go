package messages

import (
	"errors"
	"fmt"
)

// ErrNoLeader is returned for a proposal or linearizable read made while the
// node knows of no leader. The request was not proposed; it is safe to retry.
var ErrNoLeader = errors.New("no raft leader")

// ErrProposalDropped is returned when raft refused a proposal (for example
// during a leadership transfer, or a conf change while another is pending).
// The request was not proposed; it is safe to retry.
var ErrProposalDropped = errors.New("proposal dropped by raft")

// ErrTimeout is returned when a request did not complete in time. For a write
// its outcome is unknown: it may still be committed later.
var ErrTimeout = errors.New("request timed out")

// ErrStopped is returned for requests that reach a node that is stopping.
var ErrStopped = errors.New("node stopped")

// ErrRemoved is the reason a node stops when it was removed from the cluster.
var ErrRemoved = errors.New("this member was removed from the cluster")

// ErrNotFound is returned by a read of a key that does not exist, and for
// a transaction with a put that keeps the value or lease of a key that
// does not exist (TxnOp.IgnoreValue, IgnoreLease; etcd's ErrKeyNotFound):
// decided when applied, the whole transaction writes nothing.
var ErrNotFound = errors.New("key not found")

// ErrUnknownMember is returned when removing a member the cluster does not have.
var ErrUnknownMember = errors.New("unknown member")

// ErrMemberExists is returned when adding a member id the cluster already has.
var ErrMemberExists = errors.New("member already exists")

// ErrIDRemoved is returned when adding a member under an id the cluster
// removed: as in etcd, an id is never reused. A process still running with
// the removed member's data would otherwise pass for the new one (and vote
// twice), and a new member catching up through the log would apply its
// predecessor's removal as its own. Add the member under a new id.
var ErrIDRemoved = errors.New("member id was removed from the cluster and cannot be reused")

// ErrIDPrefixInUse is returned when adding a member whose id has the low
// 16 bits of a member's id: request ids carry those 16 bits only, and the
// state machine, which applies each request id once, would take one
// member's writes for the other's. Add the member under another id.
var ErrIDPrefixInUse = errors.New("member id has the same low 16 bits as a member's id")

// ErrPeerURLExists is returned when adding a member with a peer URL that a
// member of the cluster already has: two ids for one process would count it
// twice towards a quorum.
var ErrPeerURLExists = errors.New("peer URL already belongs to a member")

// ErrNotEnoughStarted is returned for a membership change that would leave
// the cluster without a quorum of started members, as etcd's strict
// reconfiguration check refuses it. Nothing was proposed.
var ErrNotEnoughStarted = errors.New("not enough started members: the change would leave the cluster without a quorum of running members")

// ErrLearnerNotReady is returned when promoting a learner whose log is not
// yet close to the leader's (etcd's rule: its match index is below 90 % of
// the leader's). Promoting it now would add a voter that cannot yet help
// commit anything. Retry once it has caught up.
var ErrLearnerNotReady = errors.New("learner has not caught up with the leader yet")

// ErrConfChangePending is returned for a membership change the leader could
// not take within an election timeout because an earlier one was not yet
// applied (raft takes one at a time). Nothing was proposed; retry.
var ErrConfChangePending = errors.New("an earlier membership change is still being applied")

// ErrNotLearner is returned when promoting a member that is already a voter.
var ErrNotLearner = errors.New("member is not a learner")

// ErrIsLearner is returned when handing leadership to a learner, which
// cannot lead.
var ErrIsLearner = errors.New("member is a learner")

// ErrNotLeader is returned for a request only the leader can decide (the
// promotion of a learner); the caller may ask the leader.
var ErrNotLeader = errors.New("this member is not the leader")

// ErrTransferFailed is returned when leadership did not move to the member
// asked for within an election timeout; the old leader may still lead.
var ErrTransferFailed = errors.New("leadership transfer did not complete")

// ErrConfChangeDeclined is returned for a committed membership change that
// does not fit the configuration it is applied to (say, one that would
// remove the last voter): raft would panic applying it, so every member
// treats it as a no-op, alike.
var ErrConfChangeDeclined = errors.New("membership change declined: it does not fit the cluster's configuration")

// ErrNoTransferee is returned when a leader is asked to hand leadership over
// but no other voter is up to take it.
var ErrNoTransferee = errors.New("no other voter is up to take leadership")

// ErrUnsupported is returned for a request the node's state machine format
// cannot express, such as a delete in the raftexample format, which has no
// delete. Nothing was proposed; retrying cannot help.
var ErrUnsupported = errors.New("operation not supported by the state machine format")

// ErrCompacted is returned for a read or watch at a revision older than the
// history this member keeps, and for a compaction (Compact) at or below the
// revision compacted already, wrapped in a *CompactedError that says which.
var ErrCompacted = errors.New("revision compacted")

// CompactedError is ErrCompacted with the newest revision the history no
// longer holds: a read at Compacted or later, a watch from Compacted+1 or
// later, can be served.
type CompactedError struct {
	Revision  uint64 // asked for
	Compacted uint64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("revision %d compacted: this member's history starts after revision %d", e.Revision, e.Compacted)
}

// Is makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// ErrFutureRevision is returned for a read at a revision past the store's,
// and for a compaction (Compact) past it, decided when it is applied.
var ErrFutureRevision = errors.New("revision is in the future")

// ErrInvalidTxn is returned for a transaction the state machine will not
// propose: a key written twice in one branch (nested transactions'
// branches included), an operation with no key, a compare of an unknown
// kind, a field its operation does not take (PrevKV on a read,
// IgnoreValue with a Value, IgnoreLease with a Lease), transactions nested
// too deep or too many operations in all. Nothing was proposed.
var ErrInvalidTxn = errors.New("invalid transaction")

// ErrDuplicateKey is the ErrInvalidTxn of a transaction that writes a key
// twice in one branch (a nested transaction's writes counting as its
// branch's), which no mod_revision could tell apart: etcd's
// "duplicate key given in txn request".
var ErrDuplicateKey = fmt.Errorf("%w: a key is written twice", ErrInvalidTxn)

// ErrTooManyOps is the ErrInvalidTxn of a transaction past the state
// machine's bounds on operations and compares: etcd's "too many
// operations in txn request".
var ErrTooManyOps = fmt.Errorf("%w: too many operations", ErrInvalidTxn)
