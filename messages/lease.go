package messages

import "errors"

// Leases, with etcd's semantics: a lease has an id (an int64 > 0, as in
// etcd's v3 API; 0 means "no lease"), a TTL in seconds and the keys
// attached to it. Granting, revoking and attaching a key go through raft;
// when a lease is revoked, or expires, all its keys are deleted in one
// entry, at one revision. Only the leader tracks deadlines: it proposes
// the revocation of a lease that expired, and answers keep-alives, which
// are not raft entries.

// LeaseGrant asks for a lease of TTL seconds; ID 0 lets the member choose
// one. Sender: the client API; receiver: the kv actor, which proposes it.
// Answered with a Result whose Lease holds the id and the TTL granted (a
// TTL under the minimum is raised to it).
type LeaseGrant struct {
	ID  int64
	TTL int64
}

// LeaseRevoke revokes a lease and deletes its keys, through raft.
// Answered with a Result (its Revision is the deletes', if any).
type LeaseRevoke struct {
	ID int64
}

// LeaseKeepAlive renews a lease: its deadline becomes now plus its TTL.
// Only the leader's kv actor answers it (not a raft entry); a follower's
// answers ErrNotLeader, and the API hands the request to the leader.
// The answer's Lease holds the TTL granted as Remaining.
type LeaseKeepAlive struct {
	ID int64
}

// LeaseQuery reads a lease: its TTL granted, its remaining TTL (from the
// leader's deadline; a follower answers ErrNotLeader as for keep-alives)
// and, with Keys, the keys attached to it.
type LeaseQuery struct {
	ID   int64
	Keys bool
}

// LeaseList lists the leases the applied state holds (ids and TTLs granted).
type LeaseList struct{}

// Lease is a lease as a Result carries it.
type Lease struct {
	ID  int64 `json:"id,string"`
	TTL int64 `json:"granted_ttl"`
	// Remaining is the TTL left, in seconds, as the leader's deadline
	// says; -1 where not known (a list).
	Remaining int64    `json:"ttl"`
	Keys      []string `json:"-"` // written by Lease.AppendJSON: keys need not be UTF-8
}

// Lease limits, each with the reason for it.
const (
	// MaxLeaseTTL is etcd's: about 285 years, so that a deadline in
	// nanoseconds never overflows.
	MaxLeaseTTL = 9_000_000_000
)

// ErrLeaseNotFound is returned for a lease the applied state does not
// hold: never granted, revoked, or expired. A put naming one writes
// nothing.
var ErrLeaseNotFound = errors.New("requested lease not found")

// ErrLeaseExpiring is the leader's answer to a keep-alive of a lease past
// its deadline whose revocation is not applied yet: retry, and the lease
// is either gone (ErrLeaseNotFound, once the revocation applied: its keys
// are gone too) or, if the revocation was lost with a leader, renewed by
// the next. Answering "not found" before the keys are deleted would tell a
// holder it lost a lease that others still see held.
var ErrLeaseExpiring = errors.New("lease expired; its revocation is being applied: retry")

// ErrLeaseExists is returned for a grant of an id the state holds.
var ErrLeaseExists = errors.New("lease already exists")

// ErrLeaseTTLTooLarge is returned for a TTL over MaxLeaseTTL.
var ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
