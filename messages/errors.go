package messages

import "errors"

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

// ErrNotFound is returned by a read of a key that does not exist.
var ErrNotFound = errors.New("key not found")

// ErrUnknownMember is returned when removing a member the cluster does not have.
var ErrUnknownMember = errors.New("unknown member")

// ErrMemberExists is returned when adding a member id the cluster already has.
var ErrMemberExists = errors.New("member already exists")

// ErrUnsupported is returned for a request the node's state machine format
// cannot express, such as a delete in the raftexample format, which has no
// delete. Nothing was proposed; retrying cannot help.
var ErrUnsupported = errors.New("operation not supported by the state machine format")
