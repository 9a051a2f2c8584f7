package messages

// Compact compacts the history of changes through Revision, as etcd's
// Compact does: once it is applied, a read at a revision below Revision
// fails with ErrCompacted (a *CompactedError), one at Revision still works,
// and a watch can resume from Revision+1 on. It goes through raft, so every
// member compacts at the same point of the log. It comes from a client API
// to the kv actor by RequestFuture and is answered with a Result (Revision:
// the store's revision once it applied) or an error: ErrCompacted when
// Revision is at or below the revision already compacted, ErrFutureRevision
// when it is past the store's revision, decided when it is applied.
type Compact struct {
	Revision uint64
}
