package persistence

import "errors"

// ErrNodeIDMismatch is returned by Open when the WAL was created by a member
// with another node id: the data directory belongs to a different member, and
// replaying its votes and log as this member's would break raft's safety.
var ErrNodeIDMismatch = errors.New("persistence: data directory belongs to another node id")

// ErrClusterIDMismatch is returned by Open when the WAL records a non-zero
// cluster id different from the one asked for: the data directory belongs to
// another cluster.
var ErrClusterIDMismatch = errors.New("persistence: data directory belongs to another cluster")

// ErrBadMetadata is returned by Open when the metadata at the head of the WAL
// cannot be decoded, so the owner of the data directory cannot be checked.
var ErrBadMetadata = errors.New("persistence: unreadable WAL metadata")

// ErrFailed is the answer to requests reaching an actor of this package after
// it reported a fatal error: it no longer writes anything.
var ErrFailed = errors.New("persistence: stopped after a fatal error")

// ErrDataDirLocked is returned by LockDataDir when another process, or
// another member of this one, is using the data dir.
var ErrDataDirLocked = errors.New("data dir is in use by another process")

// ErrNoClusterID is returned by Open when it must create a WAL but was given
// no cluster id to record in it.
var ErrNoClusterID = errors.New("persistence: a new WAL needs a cluster id")
