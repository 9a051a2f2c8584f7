package kv

import (
	"io"

	"go.uber.org/zap"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// noSpaceHeadroom is how near the quota the data may come before the
// NOSPACE alarm shows: the largest request a client may send by default
// (etcd's --max-request-bytes, 1.5 MiB) and its key; a write that size
// might not fit any more.
const noSpaceHeadroom = 3<<19 + messages.MaxKeyBytes

// storeStatus answers messages.StoreStatusRequest from the state as
// applied.
func (a *Actor) storeStatus() messages.StoreStatus {
	size, inUse, err := a.st.DBSize()
	if err != nil {
		a.cfg.Logger.Warn("could not read the db's size", zap.Error(err))
	}
	used := a.st.Used()
	return messages.StoreStatus{
		Revision:    a.st.Revision(),
		Compacted:   a.st.Compacted(),
		Applied:     a.applied,
		DBSize:      size,
		DBSizeInUse: inUse,
		Used:        used,
		NoSpace:     a.cfg.Quota > 0 && used+noSpaceHeadroom > a.cfg.Quota,
	}
}

// noteState sets the gauges that follow the db as a whole: its sizes,
// which change only when a commit, a restore or a defragmentation writes
// the file, and the applied index, which a restore moves without an
// apply. Each of those calls it: a write pays nothing for them, and a
// commit one read transaction's start.
func (a *Actor) noteState() {
	a.m.AppliedIndex.Set(float64(a.applied))
	size, inUse, err := a.st.DBSize()
	if err != nil {
		return // storeStatus logs the same failure when asked
	}
	a.m.Health.DBSize.Set(float64(size))
	a.m.Health.DBSizeInUse.Set(float64(inUse))
}

// commitNow answers messages.CommitRequest.
func (a *Actor) commitNow() any {
	a.commit()
	if a.failed {
		return messages.ErrStopped
	}
	return messages.Committed{Index: a.applied}
}

// Backup streams the db as of its last commit (store.Store.Backup); any
// goroutine may call it while the kv actor applies. Ask the kv actor to
// commit first (messages.CommitRequest) for a backup of all it applied.
func (s *State) Backup() (rc io.ReadCloser, size int64, info store.Info, err error) {
	return s.st.Backup()
}
