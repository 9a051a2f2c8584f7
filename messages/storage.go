package messages

import (
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
)

// RestoreSnapshot tells the state machine to replace its whole state with the
// snapshot's. The wal actor sends it after the snapshot is durable and before
// it delivers the append responses that carry the snapshot, so it reaches the
// kv actor ahead of every MsgStorageApply for later entries.
// Sender: wal actor. Receiver: kv actor.
type RestoreSnapshot struct {
	Snapshot *raftpb.Snapshot
}

// CreateSnapshot asks the snapshotter to persist the state machine's state as
// of Index and compact the log behind it.
// Sender: kv actor, every --snapshot-count applied entries. Receiver:
// snapshotter actor.
type CreateSnapshot struct {
	Index     uint64
	ConfState *raftpb.ConfState
	Data      []byte
}

// SaveSnapshotFile asks the snapshotter to write a snapshot received from the
// leader to a .snap file, before the wal actor records it in the WAL.
// Sender: wal actor (RequestFuture). Receiver: snapshotter actor, which
// responds with SnapshotFileSaved.
type SaveSnapshotFile struct {
	Snapshot *raftpb.Snapshot
}

// SnapshotFileSaved answers SaveSnapshotFile; Err is nil on success.
type SnapshotFileSaved struct {
	Err error
}

// RecordSnapshot asks the wal actor to write a WAL snapshot record for a
// .snap file already on disk, fsync it, and release the WAL file locks up to
// its index.
// Sender: snapshotter actor. Receiver: wal actor, which answers the sender
// with SnapshotRecorded.
type RecordSnapshot struct {
	Snapshot *walpb.Snapshot
}

// SnapshotRecorded answers RecordSnapshot. On success the snapshotter goes on
// to compact the in-memory log and purge old files.
type SnapshotRecorded struct {
	Index uint64
	Err   error
}

// LoadSnapshot asks the snapshotter to read the data of the snapshot at
// Index and Term back from its .snap file, which raft needs in order to send
// it to a follower. Memory holds only the snapshot's metadata: the data can
// be as large as the whole state.
// Sender: the raft actor's storage (persistence.SnapStorage), from inside
// raft, as a request whose sender is the raft actor. Receiver: snapshotter
// actor, which responds with SnapshotLoaded. Order: the snapshotter's
// mailbox puts it after the write of the file it names, which came first.
type LoadSnapshot struct {
	Index, Term uint64
}

// SnapshotLoaded answers LoadSnapshot: the snapshot at Index with its data,
// or Err. The raft actor hands it to its storage, which only the raft
// actor's goroutine touches.
// Sender: snapshotter actor. Receiver: raft actor. Order: a newer snapshot
// may replace the one asked for before the answer comes; the storage drops
// an answer for a snapshot that is no longer the newest.
type SnapshotLoaded struct {
	Index    uint64
	Snapshot *raftpb.Snapshot
	Err      error
}

// FlushWAL asks the wal actor to write and sync every append queued before
// it, then answer WALFlushed: a raft actor rebuilt after a panic makes its
// RawNode only once the old one's appends are in the log, since raft must
// never find in its storage entries it did not ask for (actors,
// raft_rebuild.go). The responses those appends carry reach the raft actor
// before the answer: one sender, one mailbox.
// Sender: raft actor, once per rebuild. Receiver: wal actor.
type FlushWAL struct{}

// WALFlushed answers FlushWAL. Err is the wal actor's failure, if it failed.
type WALFlushed struct{ Err error }
