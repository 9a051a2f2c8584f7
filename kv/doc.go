// Package kv owns the kv actor: the state machine of one member as a
// mailbox adapter over the layers below it, as etcd's server sits over its
// appliers and stores.
//
//	kv (this package)  the actor: batching proposals, the waiter registry,
//	                   proposing again after a leader change, reads at a
//	                   read index, member administration, publishing client
//	                   URLs, the lessor, the commit timer, snapshot
//	                   scheduling; OpenState
//	kv/apply           the applier: entry codecs and formats, the checks
//	                   before proposing and when applying, committed entries
//	                   into store operations, the quota as a wrapper
//	kv/store           the replicated state: records with revisions, the
//	                   history, ranges, transactions, leases, member lists,
//	                   dedup records, the applied index
//	kv/backend         the bbolt file: batch transaction and commit policy,
//	                   read transactions, streaming, replacing the file
//	kv/reqid           the request ids every layer reads
//
// Each imports only those below it.
//
// The kv actor (Actor) takes:
//
//   - client requests from the client APIs (packages httpapi and
//     etcdapi): messages.Put, Delete, Txn, Compact, Get, Range, AddMember,
//     PromoteMember, RemoveMember and MembersRequest, each answered with a
//     messages.Result once it is settled, and messages.DigestRequest,
//     answered with a messages.Digest of the applied state;
//   - the lease requests messages.LeaseGrant, LeaseRevoke, LeaseKeepAlive,
//     LeaseQuery and LeaseList (lessor.go: only the leader keeps deadlines
//     and answers keep-alives; it proposes the revocation of a lease past
//     its deadline);
//   - MsgStorageApply (*raftpb.Message) from the raft actor: committed entries
//     to apply, strictly in index order;
//   - messages.RestoreSnapshot from the wal actor;
//   - messages.ProposalFailed, ReadIndexReady and ReadIndexFailed from the raft
//     actor, which settle waiting requests, and messages.LeaderChanged, on
//     which it proposes again what it has in flight (repropose.go); the
//     applier skips a command whose request id it applied already (the
//     store's dedup.go).
//
// It sends messages.Propose, ProposeConfChange, ReadIndex, ApplyConfChange
// and MembersRestored to the raft actor, and hands the apply responses raft
// attached to each MsgStorageApply to Deliver once the entries are applied.
// To the watch hub (Config.Watch) it sends the changes of each apply
// (messages.WatchEvents), then each commit (WatchCommitted) and each state
// replaced by a snapshot (WatchReset), in that order.
//
// Life of an entry here (entries.go): a normal entry goes to the applier,
// whose outcomes settle the waiting requests (waiters.go) once the watch hub
// has heard of the changes; a conf change goes to the raft actor, then to
// the store's member lists. After each MsgStorageApply the actor asks the
// backend whether the batch transaction is due to commit (or arms the
// commit timer), and every SnapshotCount applied entries, or 64 MiB of
// them, commits the db and sends messages.CreateSnapshot to the snapshotter
// (snapshots.go); a follower that needs a snapshot gets the db itself,
// streamed from a read transaction (State.SnapshotReader) and saved by
// store.ReceiveSnapshotDB before raft sees the snapshot.
//
// A write is answered only after its entry is applied here; a linearizable
// read only after a read index is confirmed and applied reaches it. Nothing is
// acknowledged on proposal. Writes that arrive while two of this member's
// proposals are in raft wait and go out together as one batch entry
// (batch.go); each is still answered by its own request id.
//
// OpenState (state.go) opens the db and brings it level with the log at
// start; the actor takes the State over.
package kv
