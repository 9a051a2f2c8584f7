package messages

// StoreStatusRequest asks the kv actor for the state's sizes and
// revisions, as etcd's Maintenance.Status and Alarm report them.
// Sender: a client API (RequestFuture). Receiver: kv actor, which answers
// StoreStatus at once, from the state as applied.
type StoreStatusRequest struct{}

// StoreStatus answers StoreStatusRequest.
type StoreStatus struct {
	Revision  uint64 // the store's revision
	Compacted uint64 // the newest revision the history no longer holds
	Applied   uint64 // the last entry applied
	// DBSize is the db file's size in bytes, DBSizeInUse the part of it
	// not on bbolt's free list.
	DBSize, DBSizeInUse int64
	// Used is the bytes the data counts against the quota, and NoSpace
	// says a write of the largest request might not fit under it any more
	// (etcd's NOSPACE alarm).
	Used    uint64
	NoSpace bool
}
