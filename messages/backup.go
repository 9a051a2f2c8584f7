package messages

// CommitRequest asks the kv actor to commit what it applied to the db now,
// rather than at its next batch: a backup taken after the answer holds
// every write this member acknowledged before the request. The requester
// then reads the db from a read transaction of its own (kv.State.Backup),
// which no answer lost to a timeout can leave open.
// Sender: a client API (RequestFuture). Receiver: kv actor, which answers
// Committed.
type CommitRequest struct{}

// Committed answers CommitRequest: the db holds every entry through Index.
type Committed struct {
	Index uint64
}

// BackupInfo is what a db holds, as a backup reports it.
type BackupInfo struct {
	Index    uint64 // the last entry applied
	Term     uint64
	Revision uint64
	Keys     uint64
}
