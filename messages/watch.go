package messages

// The watch messages carry what the kv actor applies to the watch hub
// (package watch), in apply order. The hub serves every watcher of the
// member from them, so they must arrive in order and none may be missed: the
// kv actor sends them from Receive, after each MsgStorageApply, never from
// another goroutine.

// EventType says what a write did to a key.
type EventType uint8

// The kinds of Event.
const (
	EventPut    EventType = 1
	EventDelete EventType = 2
)

// Event is one key's change: for a put, the key as written (KV.ModRevision
// is the write's revision); for a delete, the key with ModRevision the
// revision of the delete and no value or other counters.
//
// Prev is the key as it was just before the change, what etcd's prev_kv
// gives: nil for a put that created the key. The kv actor fills it in on
// every event, live or read from the history (which keeps each change's
// previous record), so that a watcher asking for it gets it whether its
// events come from the hub or from the db; a watcher that does not ask
// leaves it out of its JSON. Its Value is the event's own, never the db's.
type Event struct {
	Type EventType
	KV   KV
	Prev *KV
}

// Revision is the revision that made the change.
func (e Event) Revision() uint64 { return e.KV.ModRevision }

// WatchEvents hands the hub the changes of one MsgStorageApply, in revision
// order (and, within a revision, in the order the entry made them); Revision
// is the store's revision after them.
// Sender: kv actor. Receiver: watch hub.
type WatchEvents struct {
	Events   []Event
	Revision uint64
}

// WatchCommitted tells the hub that the db holds the history through
// Revision durably: a watcher catching up reads it from the db from there
// on, so the hub needs to keep only the events after it.
// Sender: kv actor, after each db commit. Receiver: watch hub.
type WatchCommitted struct {
	Revision uint64
	// Compacted is the newest revision the history no longer holds: the
	// hub's shared history (watch.SharedHistory) serves nothing at or
	// below it from memory.
	Compacted uint64
}

// WatchReset tells the hub the state was replaced whole (a snapshot from the
// leader): events between what it has seen and Revision will never come as
// WatchEvents. Every open watch ends, telling its client to resume from the
// revision after its last event, which the new db's history serves (or
// answers as compacted, below Compacted).
// Sender: kv actor. Receiver: watch hub.
type WatchReset struct {
	Revision  uint64
	Compacted uint64
}
