// Package persistence owns everything the node keeps on disk: the write-ahead
// log under <dataDir>/wal, the snapshot files under <dataDir>/snap, the replay
// of both when the node starts, and the removal of files no longer needed.
//
// Open is called once, before any actor exists. It creates the WAL for a new
// member, or replays an existing one on top of its newest valid snapshot, and
// returns a raft.MemoryStorage ready for raft.RawNode. The MemoryStorage holds
// the newest snapshot's metadata but not its data, which can be as large as
// the whole state: SnapStorage, the raft actor's view of it, has the data read
// back from the .snap file only when raft must send the snapshot to a
// follower. It asks the snapshotter (messages.LoadSnapshot, with the raft
// actor as sender), whose answer (messages.SnapshotLoaded) the raft actor
// hands back to it: SnapStorage is only ever touched on the raft actor's
// goroutine.
//
// Two actors then share the files:
//
//   - The wal actor (NewWALActor) is the raft actor's append thread. It takes
//     *raftpb.Message of type MsgStorageAppend, writes entries and hard state
//     with one fsync per group of appends, copies them into the MemoryStorage,
//     and only then hands the responses the message carried to Deliver. An
//     append that carries a snapshot from the leader is first written as a
//     .snap file by the snapshotter (messages.SaveSnapshotFile), then recorded
//     in the WAL, and messages.RestoreSnapshot goes to the kv actor before the
//     responses are delivered. It also takes messages.RecordSnapshot from the
//     snapshotter and answers messages.SnapshotRecorded.
//   - The snapshotter actor (NewSnapshotterActor) takes messages.CreateSnapshot
//     from the kv actor: it writes the .snap file, asks the wal actor to record
//     it (messages.RecordSnapshot), and once that is durable compacts the
//     MemoryStorage and purges old .snap and .wal files. It also answers the
//     wal actor's messages.SaveSnapshotFile with messages.SnapshotFileSaved,
//     and answers messages.LoadSnapshot with messages.SnapshotLoaded.
//
// A failed write or fsync cannot be retried safely, so either actor reports it
// once through its Fatal callback and from then on does nothing that could
// make raft believe unsaved state is durable.
package persistence
