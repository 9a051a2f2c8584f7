// Package transport carries raft messages between the members of a cluster.
//
// A Transport takes the raft actor's outgoing messages (and the responses the
// wal and kv actors release after their writes) and never blocks its caller:
// a message it cannot send is dropped and reported. What it receives for the
// local member it hands to an Inbox, which posts into the raft actor's
// mailbox: *raftpb.Message, messages.ReportUnreachable,
// messages.ReportSnapshot, and messages.MemberRemoved when a peer says this
// member was removed from the cluster.
//
// Network is an in-memory transport for running whole clusters in one
// process: it can cut links (one way or both), isolate members and drop
// chosen message types, so cluster tests decide exactly which messages are
// lost.
package transport
